"""The card of the session-28 model (checkpoints/bends_full.pt: the shipped network trained 45 min more on worms that
bend 0.8-2x as often as the generator's defaults, with the shipped refiner, joiner, rescorer and pool decoding put
back): the validation scored by bakeoff.py --card, the shipped model's kept as previous_shipped_model.
usage: git show HEAD:src/napari_semiconv/models/default.json > /tmp/shipped.json; card.py /tmp/shipped.json CARD.json"""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from card_restate import restate

shipped = json.loads(Path(sys.argv[1]).read_text())
restate(sys.argv[1], sys.argv[2], decode_choice=shipped["decode_choice"] + " (kept from the session-25 model)",
        note="The session-25 shipped network trained 45 more minutes (session 28, without its count refiner, which "
             "was put back after) on synthetic worms that bend 0.8-2x as often along their bodies as the generator's "
             "defaults (SceneConfig.bends): the shipped model lost 0.13 avS on worms bending 1.5x as often and 0.25 "
             "at 2x; its refiner, joiner, rescorer and pool decoding kept.")
