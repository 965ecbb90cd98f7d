"""The card of the session-29 model (checkpoints/bends2_ref.pt: the session-28 network trained 60 min more on worms
that bend 0.8-2x as often as the generator's defaults, its count refiner, joiner and pool rescorer refitted on its
outputs): the validation scored by bakeoff.py --card, the shipped model's kept as previous_shipped_model.
usage: git show HEAD:src/napari_semiconv/models/default.json > /tmp/shipped.json; card.py /tmp/shipped.json CARD.json"""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from card_restate import restate

shipped = json.loads(Path(sys.argv[1]).read_text())
restate(sys.argv[1], sys.argv[2], decode_choice=shipped["decode_choice"],
        note="The session-28 network trained 60 more minutes (session 29, without its count refiner) on synthetic "
             "worms that bend 0.8-2x as often along their bodies as the generator's defaults; then its count refiner "
             "(480 s from the shipped one), joiner (240 s, 60 scenes per style) and pool rescorer (60 scenes per "
             "style) refitted on its outputs. The joiner's own threshold was chosen by a scoring that kept every "
             "joining's worms (fixed after); the pool decoding it ships with does not use that threshold.")
