"""Crossing pixels along a joined worm's path (DecodeConfig.patch_band) against those within patch_reach of it.
The shipped model's outputs, decoded as shipped with patch_band None (patch_reach only) and with each margin, on
validation fields (fit_rescorer.py's, VAL_SEED0 + 8000 + 1000 k + i; k = 0 brightfield, 1 fluorescence), and the
mean IoU of the found worms (IoU > 0.5) that share >= 2 % of their pixels with another true worm and of the others.
Needs docs/training/s32/patch_band.diff applied to src/ (session 32 measured it and did not keep it): `git apply
docs/training/s32/patch_band.diff`.
usage: python docs/training/s32/patch_band.py SCENES [MODEL] [MARGIN ...]"""
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
n = int(sys.argv[1])
model = load_model(sys.argv[2] if len(sys.argv) > 2 and sys.argv[2] != "-" else DEFAULT_MODEL)
margins = [None, *map(float, sys.argv[3:])] if len(sys.argv) > 3 else [None, 0.0, 1.0, 2.0, 3.0]
config = model_decode_config(model)
print(f"model {model.metadata.get('path')}, stored patch_band {config.patch_band}")
for k, style in enumerate(("brightfield", "fluorescence")):
    scenes = validation_scenes(n, style, VAL_SEED0 + 8000 + 1000 * k)
    outputs = forward_all(model, [s.image for s in scenes])
    for margin in margins:
        start = time.perf_counter()
        found = [decode_outputs(o, replace(config, patch_band=margin)) for o in outputs]
        seconds = (time.perf_counter() - start) / n
        e = evaluate([f.instances for f in found], [f.scores for f in found], [s.instances for s in scenes])
        crossed, alone = [], []
        for f, s in zip(found, scenes):
            iou = iou_matrix(f.instances, s.instances)
            shared = (s.instances & (s.instances.sum(0) >= 2)).sum((1, 2)) >= 0.02 * s.instances.sum((1, 2))
            best = iou.max(0) if len(iou) else np.zeros(len(s.instances))
            crossed += list(best[shared & (best > 0.5)])
            alone += list(best[~shared & (best > 0.5)])
        print(f"{style:12s} patch_band {margin!s:5s} avS {e['avS']:.3f} S@0.5 {e['S@0.5']:.3f} S@0.9 {e['S@0.9']:.3f}"
              f" AP {e['AP']:.3f} | found IoU crossed {np.mean(crossed):.3f} ({len(crossed)}), alone {np.mean(alone):.3f}"
              f" ({len(alone)}) | decode {seconds:.2f} s", flush=True)
