"""Patch pixels no worm's painter claims: the shipped decoding drops them (background); here each goes instead to the
worm whose painter gave it the highest probability. The shipped model's painter, fit_painter.py's validation fields
(VAL_SEED0 + 8000 + i, SCENES per style); the fields are decoded without painter and painted afterwards as the decoder
does it (checked: the same scores as the shipped decoding). usage: python docs/training/s33/unclaimed_lab.py SCENES"""
import sys
from dataclasses import replace

import numpy as np
import torch

sys.path.insert(0, "benchmarks")
from fit_painter import STYLES, multi_of

from napari_semiconv.data.sources import VAL_SEED0, validation_scenes
from napari_semiconv.decode import model_decode_config
from napari_semiconv.metrics import evaluate
from napari_semiconv.model import load_model
from napari_semiconv.models import DEFAULT_MODEL
from napari_semiconv.painting import crops, windows
from napari_semiconv.segment import decode_outputs
from napari_semiconv.threshold_search import forward_all

torch.set_num_threads(2)
n = int(sys.argv[1])
model = load_model(DEFAULT_MODEL)
shipped = model_decode_config(model)
plain = replace(shipped, painter=None)


@torch.no_grad()
def painted(stack, multi, fg, image, fill: bool):
    """``stack`` painted as the decoder does; with ``fill`` each patch pixel left to no worm goes to the likeliest."""
    win = windows(stack, multi)
    if len(win.worm) == 0:
        return stack
    prob = torch.sigmoid(shipped.painter.net(crops(stack, multi, fg, image, win))).numpy()
    out = stack.copy()
    h, w = multi.shape
    best, owner = np.full((h, w), -1.0), np.zeros((h, w), int)
    for m, (k, p, (r0, c0)) in enumerate(zip(win.worm, win.patch, win.corner)):  # a loop over pairs
        rr, cc = slice(max(r0, 0), min(r0 + win.side, h)), slice(max(c0, 0), min(c0 + win.side, w))
        inside = win.labels[rr, cc] == p
        q = prob[m][rr.start - r0:rr.stop - r0, cc.start - c0:cc.stop - c0]
        out[k, rr, cc][inside] = q[inside] > shipped.painter.threshold
        better = inside & (q > best[rr, cc])
        best[rr, cc][better] = q[better]
        owner[rr, cc][better] = k
    if fill:
        left = (best >= 0) & ~out.any(0)
        rows, cols = np.nonzero(left)
        out[owner[left], rows, cols] = True
    return out


for i, style in enumerate(STYLES):
    scenes = validation_scenes(n, style, seed0=VAL_SEED0 + 8000 + 1000 * i)
    outputs = forward_all(model, [s.image for s in scenes])
    truth = [s.instances for s in scenes]
    d = [decode_outputs(o, shipped) for o in outputs]
    e = evaluate([x.instances for x in d], [x.scores for x in d], truth)
    print(f"{style} shipped decoding: avS {e['avS']:.3f} S@0.5 {e['S@0.5']:.3f} S@0.9 {e['S@0.9']:.3f}", flush=True)
    base = [decode_outputs(o, plain) for o in outputs]
    for fill in (False, True):
        stacks = [painted(x.instances, multi_of(o, plain), (o["fg"] > plain.fg_threshold).numpy(), o["image"].numpy(),
                          fill) for x, o in zip(base, outputs)]
        e = evaluate(stacks, [x.scores for x in base], truth)
        print(f"{style} painted afterwards{', unclaimed to the likeliest' if fill else ''}: avS {e['avS']:.3f} "
              f"S@0.5 {e['S@0.5']:.3f} S@0.9 {e['S@0.9']:.3f}", flush=True)
