"""The card of the session-25 model (checkpoints/pool.pt: the shipped network, joiner and refiner with a rescorer
refitted by benchmarks/fit_rescorer.py --pool to choose among the worms of several joinings): the validation scored
by bakeoff.py --card, the shipped model's validation (as committed) kept as previous_shipped_model, the note and
decode choice said anew.
usage: git show HEAD:src/napari_semiconv/models/default.json > /tmp/shipped.json; card.py /tmp/shipped.json CARD.json"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from card_restate import restate

restate(sys.argv[1], sys.argv[2],
        decode_choice=("pool decoding (the worms of the joinings at probabilities 0.1 ... 0.9 and the pieces alone "
                         "are candidates; the rescorer keeps the best first, no piece in two worms) with a score cut "
                         "of 0.3 on the rescorer's probability, chosen on 20 validation scenes per style (python "
                         "benchmarks/fit_rescorer.py --model checkpoints/pool.pt --train 150 --scenes 20 --pool "
                         "--write, session 25); the other thresholds at their defaults"),
        note="The session-23 shipped model with its rescorer refitted (session 25) on the candidates of pool "
                "decoding (12,788 in 150 training scenes per style), so that it chooses among several joinings. ")
