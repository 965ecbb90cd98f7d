"""Restate a candidate model's card for shipping: its validation as scored by bakeoff.py --card, the shipped model's
validation (as committed) kept as previous_shipped_model, a new note (before the shipped one's) and decode choice."""
import json
from pathlib import Path


def restate(shipped_json: str, card_json: str, decode_choice: str, note: str) -> None:
    """Rewrite ``card_json`` in place; ``shipped_json`` is the committed default.json (git show HEAD:...)."""
    shipped = json.loads(Path(shipped_json).read_text())
    card_path = Path(card_json)
    card = json.loads(card_path.read_text())
    v = shipped["validation"]
    card["validation"]["previous_shipped_model"] = {
        "scenes": v["scenes"],
        **{f"{s}_{k}": v[s][k] for s in ("brightfield", "fluorescence") for k in ("avS", "S@0.5", "AP")}}
    card["decode_choice"] = decode_choice
    card["note"] = note.rstrip() + " " + shipped["note"]
    card_path.write_text(json.dumps(card, indent=2) + "\n")
