"""The pool's joining probabilities: the shipped model (its joiner, rescorer, choice and painter) on fit_painter.py's
validation fields (VAL_SEED0 + 8000 / 9000 + i, N per style), decoded with the shipped POOL_THRESHOLDS and with denser
or sparser sets, or one whose lowest probability is lower (decode.POOL_THRESHOLDS patched). With MODEL (default: the
shipped one) another model file is read (session 35: the warm relational joiner, sharper than the shipped one).
usage: python docs/training/s34/pool_lab.py N [MODEL]"""
import sys

import numpy as np
import torch

import napari_semiconv.decode as dec
from napari_semiconv.data.sources import VAL_SEED0, validation_scenes
from napari_semiconv.decode import model_decode_config
from napari_semiconv.metrics import evaluate
from napari_semiconv.model import load_model
from napari_semiconv.models import DEFAULT_MODEL
from napari_semiconv.segment import decode_outputs
from napari_semiconv.threshold_search import forward_all

torch.set_num_threads(2)
model = load_model(sys.argv[2] if len(sys.argv) > 2 else DEFAULT_MODEL)
config = model_decode_config(model)
SETS = {"shipped": dec.POOL_THRESHOLDS, "dense": (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, np.inf),
        "sparse": (0.1, 0.5, 0.9, np.inf), "lower": (0.03, 0.3, 0.5, 0.7, 0.9, np.inf)}
n = int(sys.argv[1])
for i, style in enumerate(("brightfield", "fluorescence")):
    scenes = validation_scenes(n, style, VAL_SEED0 + 8000 + 1000 * i)
    outs = forward_all(model, [s.image for s in scenes])
    for name, pool in SETS.items():
        dec.POOL_THRESHOLDS = pool
        got = [decode_outputs(o, config) for o in outs]
        e = evaluate([g.instances for g in got], [g.scores for g in got], [s.instances for s in scenes])
        print(f"{style:12s} {name:8s} {pool}: avS {e['avS']:.3f} S@0.5 {e['S@0.5']:.3f} S@0.9 {e['S@0.9']:.3f}",
              flush=True)
