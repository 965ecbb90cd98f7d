"""Painting beyond the patch: the painter's loss and answer over the foreground pixels within R px of the patch in its
window, not only the patch's own pixels (a found crossing worm misses 1.5-1.9 % of its area in truly shared pixels
outside the count head's patches and holds 2-3 % of another worm's there: docs/training/s32/crossing_pixels.log).
A painter is trained on fit_painter.py's cached examples (its inputs and targets; only the loss region differs) for
SECONDS, then scored on fit_painter.py's validation fields (VAL_SEED0 + 8000 + i, SCENES per style) against the
shipped decoding (its painter, R = 0): the fields are decoded without painter and each kept worm painted afterwards, as
the decoder does it. usage: python docs/training/s33/region_lab.py CACHE SECONDS SCENES R"""
import sys
from dataclasses import replace

import numpy as np
import torch
from scipy import ndimage as ndi

sys.path.insert(0, "benchmarks")
from fit_painter import STYLES, multi_of, train_painter

from napari_semiconv.data.sources import VAL_SEED0, validation_scenes
from napari_semiconv.decode import model_decode_config
from napari_semiconv.metrics import evaluate
from napari_semiconv.model import load_model
from napari_semiconv.models import DEFAULT_MODEL
from napari_semiconv.painting import CHANNELS, crops, windows
from napari_semiconv.segment import decode_outputs
from napari_semiconv.threshold_search import forward_all

torch.set_num_threads(2)
cache, seconds, n, reach = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])


def region_of(patch: np.ndarray, fg: np.ndarray) -> np.ndarray:
    """(S, S) bool: the patch and the foreground within ``reach`` px of it."""
    return patch | (fg & (ndi.distance_transform_edt(~patch) <= reach))


x, y = torch.load(cache, weights_only=True)
p_i, f_i = CHANNELS.index("patch"), CHANNELS.index("foreground")
region = torch.from_numpy(np.stack([region_of(a > 0.5, b > 0.5) for a, b in
                                    zip(x[:, p_i].float().numpy(), x[:, f_i].float().numpy())]))
print(f"{len(x)} examples; region {region.float().sum((1, 2)).mean():.0f} px per window against the patch's "
      f"{(x[:, p_i] > 0.5).float().sum((1, 2)).mean():.0f}", flush=True)
net = train_painter(x, y, seconds, region=region)
model = load_model(DEFAULT_MODEL)
shipped = model_decode_config(model)
plain = replace(shipped, painter=None)


@torch.no_grad()
def painted(stack, multi, fg, image, threshold):
    """``stack`` with each kept worm's region around each patch it holds replaced by the net's answer."""
    win = windows(stack, multi)
    if len(win.worm) == 0:
        return stack
    prob = torch.sigmoid(net(crops(stack, multi, fg, image, win))).numpy()
    out = stack.copy()
    h, w = multi.shape
    for m, (k, p, (r0, c0)) in enumerate(zip(win.worm, win.patch, win.corner)):  # a loop over pairs
        rr, cc = slice(max(r0, 0), min(r0 + win.side, h)), slice(max(c0, 0), min(c0 + win.side, w))
        inside = region_of(win.labels[rr, cc] == p, fg[rr, cc])
        out[k, rr, cc][inside] = prob[m][rr.start - r0:rr.stop - r0, cc.start - c0:cc.stop - c0][inside] > threshold
    return out


for i, style in enumerate(STYLES):
    scenes = validation_scenes(n, style, seed0=VAL_SEED0 + 8000 + 1000 * i)
    outputs = forward_all(model, [s.image for s in scenes])
    truth = [s.instances for s in scenes]
    rows = {"shipped (painter on the patch)": [decode_outputs(o, shipped) for o in outputs]}
    base = [decode_outputs(o, plain) for o in outputs]
    e = evaluate([d.instances for d in rows["shipped (painter on the patch)"]],
                 [d.scores for d in rows["shipped (painter on the patch)"]], truth)
    print(f"{style} shipped (painter on the patch): avS {e['avS']:.3f} S@0.5 {e['S@0.5']:.3f} S@0.9 {e['S@0.9']:.3f}")
    for t in (0.4, 0.5, 0.6):
        stacks = [painted(d.instances, multi_of(o, plain), (o["fg"] > plain.fg_threshold).numpy(), o["image"].numpy(), t)
                  for d, o in zip(base, outputs)]
        e = evaluate(stacks, [d.scores for d in base], truth)
        print(f"{style} region {reach:g} px, threshold {t}: avS {e['avS']:.3f} S@0.5 {e['S@0.5']:.3f} "
              f"S@0.9 {e['S@0.9']:.3f}", flush=True)
