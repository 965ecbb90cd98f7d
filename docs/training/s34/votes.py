"""Where the votes of crossing-patch pixels land, against whether they are the worm's: for each decoded worm matched
to a true worm (IoU > 0.5) on N of fit_painter.py's validation fields per style (VAL_SEED0 + 8000 / 9000 + i), the
shipped model decoded without painter, over the pixels of the patches the worm holds: whether the pixel's vote lands on
the worm's own pixels (not counted 2+), whether the reach rule gave it to the worm, and whether the true worm holds it.
usage: python docs/training/s34/votes.py N"""
import sys

sys.path.insert(0, "benchmarks")
from dataclasses import replace

import numpy as np
import torch
from fit_painter import matched, multi_of
from scipy import ndimage as ndi

from napari_semiconv.data.sources import VAL_SEED0, validation_scenes
from napari_semiconv.decode import model_decode_config
from napari_semiconv.model import load_model
from napari_semiconv.models import DEFAULT_MODEL
from napari_semiconv.segment import decode_outputs
from napari_semiconv.threshold_search import forward_all

torch.set_num_threads(2)
m = load_model(DEFAULT_MODEL); cfg = replace(model_decode_config(m), painter=None)
tab = np.zeros((2, 2, 2))  # [vote lands on own][given by reach][truth]
for style, s0 in (("brightfield", 8000), ("fluorescence", 9000)):
    scenes = validation_scenes(int(sys.argv[1]), style, VAL_SEED0 + s0)
    for out, sc in zip(forward_all(m, [s.image for s in scenes]), scenes):
        d = decode_outputs(out, cfg); multi = multi_of(out, cfg)
        h, w = multi.shape
        sh = out["shift"].numpy()
        rr, cc = np.mgrid[:h, :w]
        er = np.clip(np.round(rr + sh[0]).astype(int), 0, h - 1); ec = np.clip(np.round(cc + sh[1]).astype(int), 0, w - 1)
        labels, n = ndi.label(multi, np.ones((3, 3)))
        for i, j in matched(d.instances, sc.instances):
            own = d.instances[i] & ~multi
            held = np.unique(labels[d.instances[i] & multi]); held = held[held > 0]
            region = np.isin(labels, held)
            lands = own[er, ec] & region
            np.add.at(tab, (lands[region].astype(int), d.instances[i][region].astype(int), sc.instances[j][region].astype(int)), 1)
    print(style, flush=True)
print(tab)
for a in (0, 1):
    for g in (0, 1):
        t = tab[a, g]; print(f"lands={a} given={g}: n={t.sum():.0f} P(true)={t[1]/max(t.sum(),1):.3f}")
