"""The rescorer refitted on a pool that holds touching unions too (touch_lab.py), then scored as touch_lab scores.

    python docs/training/s36/touch_rescorer.py MODEL CONTACT TRAIN N

MODEL (a copy of the shipped model: its rescorer is overwritten) gets a rescorer fitted by benchmarks/fit_rescorer.py
--pool --write on TRAIN training scenes per style with the touching unions among the candidates (contact >= CONTACT
px), then it is scored on touch_lab's N + N fields with the unions off and on.
"""

import sys

sys.path[:0] = ["docs/training/s36", "benchmarks"]
import fit_rescorer
import touch_lab  # its import puts the touching unions into the decoder's pool

from napari_semiconv.decode import model_decode_config
from napari_semiconv.registry import resolve_model

path, contact, train, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
touch_lab.CONTACT[0] = contact
fit_rescorer.main(["--model", path, "--train", train, "--scenes", "20", "--pool", "--write",
                   "--report", "/tmp/touch_rescorer.md"])
model = resolve_model(path, "cpu")
touch_lab.score(model, model_decode_config(model), n, [0, contact])
