"""The card of the session-23 model (checkpoints/rescored.pt: the shipped network, joiner and refiner with a rescorer
network refitted by benchmarks/fit_rescorer.py): the validation scored by bakeoff.py --card, the shipped model's
validation (as committed) kept as previous_shipped_model, the note and decode choice said anew.
usage: git show HEAD:src/napari_semiconv/models/default.json > /tmp/shipped.json; card.py /tmp/shipped.json CARD.json"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from card_restate import restate

restate(sys.argv[1], sys.argv[2],
        decode_choice=("score cut 0.3 on the rescorer's probability chosen on 20 validation scenes per style "
                         "(python benchmarks/fit_rescorer.py --train 150 --scenes 20 --write --model checkpoints/rescored.pt, "
                         "session 23); the other thresholds at their defaults"),
        note="The session-22 shipped model with its rescorer replaced (session 23) by a small network (two hidden "
                "layers of 16) over 18 instance features, 4 of them from each instance's skeleton, fitted on 150 "
                "training scenes per style. ")
