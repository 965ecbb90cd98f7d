"""Where matched worms lose IoU: worms that touch no other worm (their loss is the outline alone) against those that
touch or cross one (where their missed pixels lie: shared by two true worms or given to another instance, or foreground given to none), and the mean outline offset (pixels the prediction adds minus misses, over the true outline's
length: > 0 too fat, < 0 too thin). Validation fields (seeds VAL_SEED0 + 700 + i), shipped model.

    python docs/training/s36/edge_lab.py N [MODEL]
"""

import sys

import numpy as np
from scipy import ndimage as ndi

from napari_semiconv.data.sources import VAL_SEED0
from napari_semiconv.data.synthetic import SceneConfig, make_scene
from napari_semiconv.metrics import iou_matrix
from napari_semiconv.registry import resolve_model
from napari_semiconv.segment import SegmentConfig, segment

n = int(sys.argv[1])
model = resolve_model(sys.argv[2] if len(sys.argv) > 2 else None, "cpu")
for style in ("brightfield", "fluorescence"):
    rows = []  # (alone, iou, added, missed, outline)
    for i in range(n):
        scene = make_scene(VAL_SEED0 + 700 + i, SceneConfig(style=style))
        result = segment(model, scene.image, SegmentConfig(keep_embedding=False))
        pred, fg = result.instances.to_stack(), result.foreground > 0.5
        truth = scene.instances
        if not len(pred):
            continue
        iou = iou_matrix(pred, truth)
        grown = np.stack([ndi.binary_dilation(t, iterations=2) for t in truth])
        for j, t in enumerate(truth):
            k = int(iou[:, j].argmax())
            if iou[k, j] < 0.5:
                continue
            others = np.delete(grown, j, 0).any(0)
            alone = not (grown[j] & others).any()
            outline = int((t & ~ndi.binary_erosion(t)).sum())
            missed, added = t & ~pred[k], pred[k] & ~t
            shared = truth.sum(0) > 1
            rows.append((alone, iou[k, j], int(added.sum()), int(missed.sum()), outline,
                         int((missed & shared).sum()), int((missed & ~shared & np.delete(pred, k, 0).any(0)).sum()),
                         int((added & np.delete(truth, j, 0).any(0)).sum()),
                         int((missed & ~shared & ~pred.any(0) & fg).sum())))
    r = np.array(rows, float)
    for alone, what in ((1, "alone"), (0, "touching or crossing")):
        s = r[r[:, 0] == alone]
        print(f"{style} | {what} | {len(s)} matched | IoU median {np.median(s[:, 1]):.3f} q25 "
              f"{np.percentile(s[:, 1], 25):.3f} | share >= 0.9 {np.mean(s[:, 1] >= 0.9):.2f} | added/outline "
              f"{s[:, 2].sum() / s[:, 4].sum():.2f} px, missed/outline {s[:, 3].sum() / s[:, 4].sum():.2f} px | of the missed: "
              f"{s[:, 5].sum() / s[:, 3].sum():.0%} shared by two true worms, {s[:, 6].sum() / s[:, 3].sum():.0%} single "
              f"and given to another instance, {s[:, 8].sum() / s[:, 3].sum():.0%} single, foreground and given to none | of the added: {s[:, 7].sum() / s[:, 2].sum():.0%} another worm's",
              flush=True)
