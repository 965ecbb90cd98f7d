"""Foreground that the decoder gives to no worm, given to the nearest worm within R px (a distance transform over
the label image): avS before and after, validation fields (seeds VAL_SEED0 + 700 + i), shipped model or MODEL.

    python docs/training/s36/fill_lab.py N [MODEL]
"""

import sys

import numpy as np
from scipy import ndimage as ndi

from napari_semiconv.data.sources import VAL_SEED0
from napari_semiconv.data.synthetic import SceneConfig, make_scene
from napari_semiconv.metrics import evaluate
from napari_semiconv.registry import resolve_model
from napari_semiconv.segment import SegmentConfig, segment

REACHES = (0, 1, 2, 3, 5, 8)


def filled(stack: np.ndarray, labels: np.ndarray, fg: np.ndarray, reach: float) -> np.ndarray:
    """(N, H, W) bool worms with the foreground no worm holds given to the worm of the nearest labelled pixel
    within ``reach`` px."""
    if reach == 0 or not len(stack):
        return stack
    dist, (rows, cols) = ndi.distance_transform_edt(labels == 0, return_indices=True)
    free = fg & ~stack.any(0) & (dist <= reach)
    owner = labels[rows, cols]
    out = stack.copy()
    r, c = np.nonzero(free)
    out[owner[r, c] - 1, r, c] = True
    return out


n = int(sys.argv[1])
model = resolve_model(sys.argv[2] if len(sys.argv) > 2 else None, "cpu")
for style in ("brightfield", "fluorescence"):
    preds = {r: [] for r in REACHES}
    scores, truths = [], []
    for i in range(n):
        scene = make_scene(VAL_SEED0 + 700 + i, SceneConfig(style=style))
        res = segment(model, scene.image, SegmentConfig(keep_embedding=False))
        stack = res.instances.to_stack()
        for r in REACHES:
            preds[r].append(filled(stack, res.labels, res.foreground > 0.5, r))
        scores.append(res.scores)
        truths.append(scene.instances)
    for r in REACHES:
        m = evaluate(preds[r], scores, truths)
        print(f"{style} | reach {r} px | avS {m['avS']:.3f} | S@0.5 {m['S@0.5']:.3f} | S@0.9 {m['S@0.9']:.3f}",
              flush=True)
