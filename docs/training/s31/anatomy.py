"""Where the shipped model's avS is lost on ordinary fields: validation scenes at the generator's defaults
(VAL_SEED0 + 24000 + i, never test seeds), decoded as shipped. Each true worm is matched one-to-one at IoU 0.5 (as
avS's first threshold) and sorted: found (its IoU binned), split (no match; two or more decoded instances each cover >=
20 % of it), merged (no match; one instance covers >= 50 % of it and >= 30 % of another true worm), missed (the rest).
For found worms the pixels lost from IoU are sorted: missing (true, not decoded) and extra (decoded, not true), each at
the worm's outline (within 1.5 px of its edge), in another worm (extra only), in a crossing (pixels of the worm also in
another true worm; missing only), or elsewhere. Unmatched decoded instances are counted. The true worms are also
grouped by the share of their pixels that lie in another true worm too (overlapped) and by whether they touch the
field's border: the share found and the mean best IoU of any decoded instance in each group.
usage: python docs/training/s31/anatomy.py SCENES"""
import sys

import numpy as np
import torch
from scipy import ndimage as ndi

from napari_semiconv.data.sources import VAL_SEED0
from napari_semiconv.data.synthetic import SceneConfig, make_scene
from napari_semiconv.decode import model_decode_config
from napari_semiconv.metrics import evaluate, iou_matrix, matches
from napari_semiconv.model import load_model
from napari_semiconv.models import DEFAULT_MODEL
from napari_semiconv.normalize import normalize
from napari_semiconv.segment import SegmentConfig, decode_outputs, predict_iter

torch.set_num_threads(2)
n = int(sys.argv[1])
model = load_model(DEFAULT_MODEL)
config = model_decode_config(model)
BINS = (0.5, 0.6, 0.7, 0.8, 0.9, 1.01)
for style in ("brightfield", "fluorescence"):
    kinds = {"found": 0, "split": 0, "merged": 0, "missed": 0}
    ious, false_pos, decoded = [], 0, 0
    px = {k: 0 for k in ("missing outline", "missing crossing", "missing other", "extra outline", "extra in another worm",
                         "extra other", "true")}
    preds, scores, truths = [], [], []
    groups = []  # per true worm: (overlapped share, touches the border, found, best IoU)
    for i in range(n):
        s = make_scene(VAL_SEED0 + 24000 + i, SceneConfig(style=style))
        out = next(o for o in predict_iter(model, normalize(s.image), SegmentConfig()) if isinstance(o, dict))
        d = decode_outputs(out, config)
        pred, gt = d.instances.astype(bool), s.instances.astype(bool)
        preds.append(pred), scores.append(d.scores), truths.append(gt)
        iou = iou_matrix(pred, gt)  # (P, G)
        match = matches(pred, gt, 0.5)  # (G,) matched prediction, -1 none
        decoded += len(pred)
        false_pos += len(pred) - int((match >= 0).sum())
        found = {g: int(p) for g, p in enumerate(match) if p >= 0}
        cover = (pred.reshape(len(pred), -1).astype(np.float32) @ gt.reshape(len(gt), -1).T.astype(np.float32)
                 / np.maximum(gt.reshape(len(gt), -1).sum(1), 1)) if len(pred) else np.zeros((0, len(gt)))  # (P, G)
        others = gt.sum(0)
        border = gt[:, 0].any(1) | gt[:, -1].any(1) | gt[:, :, 0].any(1) | gt[:, :, -1].any(1)  # (G,)
        groups += [((others[gt[g]] > 1).mean(), border[g], g in found, iou[:, g].max() if len(pred) else 0.0)
                   for g in range(len(gt))]
        for g in range(len(gt)):
            if g in found:
                kinds["found"] += 1
                p = pred[found[g]]
                ious.append(iou[found[g], g])
                edge = np.where(gt[g], ndi.distance_transform_edt(gt[g]), ndi.distance_transform_edt(~gt[g])) <= 1.5
                miss, extra = gt[g] & ~p, p & ~gt[g]
                px["true"] += int(gt[g].sum())
                px["missing outline"] += int((miss & edge).sum())
                px["missing crossing"] += int((miss & ~edge & (others > 1)).sum())
                px["missing other"] += int((miss & ~edge & (others <= 1)).sum())
                px["extra outline"] += int((extra & edge).sum())
                px["extra in another worm"] += int((extra & ~edge & (others > 0)).sum())
                px["extra other"] += int((extra & ~edge & (others == 0)).sum())
            elif (cover[:, g] >= 0.2).sum() >= 2:
                kinds["split"] += 1
            elif len(pred) and cover[:, g].max() >= 0.5 and (np.delete(cover[cover[:, g].argmax()], g) >= 0.3).any():
                kinds["merged"] += 1
            else:
                kinds["missed"] += 1
    e = evaluate(preds, scores, truths)
    hist = np.histogram(ious, BINS)[0]
    print(f"{style}: avS {e['avS']:.3f} S@0.5 {e['S@0.5']:.3f}; true worms {sum(kinds.values())}: "
          + ", ".join(f"{k} {v}" for k, v in kinds.items()) + f"; decoded {decoded}, unmatched {false_pos}")
    print("  found worms' IoU: " + ", ".join(f"{a:.1f}-{b:.1f}: {c}" for a, b, c in zip(BINS, BINS[1:], hist))
          + f"; mean {np.mean(ious):.3f}")
    print("  found worms' pixels (per 100 true): " + ", ".join(f"{k} {100 * v / px['true']:.1f}" for k, v in px.items()
                                                               if k != "true"))
    share, edge, hit, best = np.array(groups, float).T
    for name, sel in (("overlapped < 5 %", share < 0.05), ("overlapped 5-20 %", (share >= 0.05) & (share < 0.2)),
                      ("overlapped >= 20 %", share >= 0.2), ("touching the border", edge == 1),
                      ("inside the field", edge == 0)):
        print(f"  {name}: {int(sel.sum())} worms, found {hit[sel].mean():.2f}, mean best IoU {best[sel].mean():.2f}",
              flush=True)
