"""One DecodeConfig field swept: the shipped model's outputs, decoded as shipped with FIELD at its stored value and at
each of VALUES (None: None), on
validation fields (fit_rescorer.py's, VAL_SEED0 + 8000 + 1000 k + i; k = 0 brightfield, 1 fluorescence), and the
mean IoU of the found worms (IoU > 0.5) that share >= 2 % of their pixels with another true worm and of the others.
Session 32 swept patch_band (crossing pixels along a joined worm's path; it needs docs/training/s32/patch_band.diff
applied to src/, `git apply docs/training/s32/patch_band.diff`, measured and not kept) and patch_reach.
usage: python docs/training/s32/decode_sweep.py FIELD SCENES MODEL|- VALUE ..."""
import sys
import time
from dataclasses import replace

import numpy as np
import torch

from napari_semiconv.data.sources import VAL_SEED0, validation_scenes
from napari_semiconv.decode import model_decode_config
from napari_semiconv.metrics import evaluate, iou_matrix
from napari_semiconv.model import load_model
from napari_semiconv.models import DEFAULT_MODEL
from napari_semiconv.segment import decode_outputs
from napari_semiconv.threshold_search import forward_all

torch.set_num_threads(2)
field, n = sys.argv[1], int(sys.argv[2])
model = load_model(DEFAULT_MODEL if sys.argv[3] == "-" else sys.argv[3])
config = model_decode_config(model)
values = [getattr(config, field), *(None if v == "None" else float(v) for v in sys.argv[4:])]
print(f"model {model.metadata.get('path')}, stored {field} {values[0]}")
for k, style in enumerate(("brightfield", "fluorescence")):
    scenes = validation_scenes(n, style, VAL_SEED0 + 8000 + 1000 * k)
    outputs = forward_all(model, [s.image for s in scenes])
    for value in values:
        start = time.perf_counter()
        found = [decode_outputs(o, replace(config, **{field: value})) for o in outputs]
        seconds = (time.perf_counter() - start) / n
        e = evaluate([f.instances for f in found], [f.scores for f in found], [s.instances for s in scenes])
        crossed, alone = [], []
        for f, s in zip(found, scenes):
            iou = iou_matrix(f.instances, s.instances)
            shared = (s.instances & (s.instances.sum(0) >= 2)).sum((1, 2)) >= 0.02 * s.instances.sum((1, 2))
            best = iou.max(0) if len(iou) else np.zeros(len(s.instances))
            crossed += list(best[shared & (best > 0.5)])
            alone += list(best[~shared & (best > 0.5)])
        print(f"{style:12s} {field} {value!s:5s} avS {e['avS']:.3f} S@0.5 {e['S@0.5']:.3f} S@0.9 {e['S@0.9']:.3f}"
              f" AP {e['AP']:.3f} | found IoU crossed {np.mean(crossed):.3f} ({len(crossed)}), alone {np.mean(alone):.3f}"
              f" ({len(alone)}) | decode {seconds:.2f} s", flush=True)
