"""Session 37: the model with the contact network (checkpoints/s37_contacts.pt, its card written by fit_joiner --write
and bakeoff --card) shipped as the default; the previous model's bakeoff figures kept in its card, a note, its size."""

import json
import shutil
from pathlib import Path

src, dst = Path("checkpoints/s37_contacts"), Path("src/napari_semiconv/models/default")
card = json.loads(src.with_suffix(".json").read_text())
old = json.loads(dst.with_suffix(".json").read_text())
prev = old["validation"]
card["validation"]["previous_shipped_model"] = {
    "scenes": "40 per style, seeds VAL_SEED0 + 1000 + i (python benchmarks/bakeoff.py score "
              "src/napari_semiconv/models/default.pt checkpoints/s37_contacts.pt --scenes 40, session 37; "
              "docs/training/s37/bakeoff_contacts.log) (session 33's shipped model: this one without the contact network)",
    **{f"{s}_{k}": prev[s][k] for s in ("brightfield", "fluorescence") for k in ("avS", "S@0.5", "AP")}}
card["note"] = ("Session 37: pieces that touch outside the crossings are joined too where the joiner's contact network "
                "(napari_semiconv.joining.contacts, Joiner.contact_net) says they are one worm; the network was fitted "
                "from the joiner's own on 6,036 contact pairs of 600 training scenes per style (python "
                "benchmarks/fit_joiner.py --contacts --train 600 --seconds 600 --scenes 20 --hold 0.2 --write on a copy "
                "of the session 33 model; its 20 + 20 validation scenes VAL_SEED0 + 9000 + i: 0.593 / 0.618 -> "
                "0.614 / 0.612); the network, refiner, crossing joiner, rescorer and painter unchanged. Chosen on 40 "
                "validation scenes per style against the previous shipped model: see 'validation'. " + old["note"])
shutil.copyfile(src.with_suffix(".pt"), dst.with_suffix(".pt"))
card["size_bytes"] = dst.with_suffix(".pt").stat().st_size
dst.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")
print("shipped", card["size_bytes"], card["validation"]["brightfield"], card["validation"]["fluorescence"])
