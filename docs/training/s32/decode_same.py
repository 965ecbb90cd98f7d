"""Does a decoder change keep its output, and what does it save? The shipped model's outputs on 10 validation fields
(5 per style, VAL_SEED0 + 8000 + i and + 9000 + i) decoded as shipped after one warm-up: `save` stores the labels and
scores (run it on the code before the change), `check` compares with them (on the code after it); both print the decode
time per field.
usage: python docs/training/s32/decode_same.py save|check"""
import sys
import time

import numpy as np
import torch

from napari_semiconv.data.sources import VAL_SEED0, validation_scenes
from napari_semiconv.decode import model_decode_config
from napari_semiconv.model import load_model
from napari_semiconv.models import DEFAULT_MODEL
from napari_semiconv.segment import decode_outputs
from napari_semiconv.threshold_search import forward_all

torch.set_num_threads(2)
m = load_model(DEFAULT_MODEL); cfg = model_decode_config(m)
scenes = validation_scenes(5, "brightfield", VAL_SEED0+8000) + validation_scenes(5, "fluorescence", VAL_SEED0+9000)
outs = forward_all(m, [s.image for s in scenes])
decode_outputs(outs[0], cfg)
t = time.perf_counter(); ds = [decode_outputs(o, cfg) for o in outs]; t = (time.perf_counter() - t) / len(outs)
if sys.argv[1] == "save":
    np.savez("/tmp/decode_same.npz", *[d.labels for d in ds], *[d.scores for d in ds])
else:
    ref = np.load("/tmp/decode_same.npz"); k = len(ds)
    print("identical:", all(np.array_equal(ref[f"arr_{i}"], d.labels) for i, d in enumerate(ds)) and
          all(np.array_equal(ref[f"arr_{k + i}"], d.scores) for i, d in enumerate(ds)))
print(f"decode {t:.3f} s per field")
