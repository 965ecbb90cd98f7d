"""Give a network trained without the count refiner (train_default.py --init on the shipped model less its refiner)
the shipped model's refiner, joiner, rescorer and decoding: usage attach.py TRAINED.pt OUT.pt"""
import sys

from napari_semiconv.model import load_model
from napari_semiconv.model.io import save_model
from napari_semiconv.model.widen import with_count_refiner
from napari_semiconv.models import DEFAULT_MODEL

shipped = load_model(DEFAULT_MODEL)
model = with_count_refiner(load_model(sys.argv[1]))
model.count_refiner.load_state_dict(shipped.count_refiner.state_dict())
kept = {k: shipped.metadata[k] for k in ("joiner", "rescorer", "decode", "count_refiner") if k in shipped.metadata}
meta = {k: v for k, v in model.metadata.items() if k != "path"}
# TRAINED.pt was trained (through one or more train_default.py runs, each in its recipe) from norefiner.py's model,
# a step its recipe lacks: put it before the run that started from it, and this attaching after the last
NOREFINER = "checkpoints/norefiner.pt"
recipe = meta["recipe"]
first = next(i for i, step in enumerate(recipe) if f"--init {NOREFINER}" in step)
meta["recipe"] = [*recipe[:first], f"python docs/training/s28/norefiner.py {NOREFINER}", *recipe[first:],
                  "python docs/training/s28/attach.py " + " ".join(sys.argv[1:])]
save_model(model.eval(), sys.argv[2], {**meta, **kept})
