"""Where the decoder's choice among the pool's candidates loses, read from pool_cache.py's caches: the rescorer refitted
on the fitting scenes as the shipped one was (rescorer_lab.py's base), its choice at cut 0.2 on the validation scenes;
per true worm whether it is found (a kept candidate at IoU > 0.5), missed with a good candidate under the cut, blocked
(a good candidate over the cut that a kept one shares pieces with), or missed with no good candidate at all; the best IoU
of the kept false candidates and of the good candidates under the cut; S at each threshold and the IoU of the matches.
usage: python docs/training/s32/choice_errors.py TRAIN.npz VAL.npz"""
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rescorer_lab import apply, choose, load, quality

from napari_semiconv.metrics import S_THRESHOLDS, s_of_iou
from napari_semiconv.rescoring import FEATURES, fit_rescorer

torch.set_num_threads(1)
CUT = 0.2
train, val = load(sys.argv[1]), load(sys.argv[2])
rescorer = fit_rescorer(np.concatenate([s["features"] for s in train]), np.concatenate([quality(s) for s in train]))
count = dict.fromkeys(("found", "false kept", "missed: under the cut", "missed: blocked", "missed: no candidate"), 0)
false_iou, under_iou, matched_iou, per, kinds = [], [], [], [], {"false": [], "true": []}
for s in val:
    scores = apply(rescorer, s["features"])
    keep = choose(s, scores, CUT)
    iou = s["iou"]
    best = iou.max(1) if iou.shape[1] else np.zeros(len(scores))
    count["false kept"] += int((keep & (best <= 0.5)).sum())
    false_iou += list(best[keep & (best <= 0.5)])
    kinds["false"].append(s["features"][keep & (best <= 0.5)])
    kinds["true"].append(s["features"][keep & (best > 0.5)])
    for t in range(iou.shape[1]):  # loop over true worms
        good = iou[:, t] > 0.5
        if (good & keep).any():
            count["found"] += 1
        elif not good.any():
            count["missed: no candidate"] += 1
        elif (scores[good] < CUT).all():
            count["missed: under the cut"] += 1
            under_iou.append(iou[good, t].max())
        else:
            count["missed: blocked"] += 1
    kept = iou[keep]
    per.append([s_of_iou(kept, t) for t in S_THRESHOLDS])
    matched_iou += list(kept.max(1)[kept.max(1) > 0.5]) if kept.size else []
print(f"{len(val)} validation scenes, cut {CUT}: " + ", ".join(f"{k} {v}" for k, v in count.items()))
print("best IoU of the kept false candidates, 0-0.1-...-0.5:", np.histogram(false_iou, np.linspace(0, 0.5, 6))[0])
print("best IoU of good candidates under the cut, 0.5-0.6-...-1:", np.histogram(under_iou, np.linspace(0.5, 1, 6))[0])
print("S at 0.5 ... 0.9:", np.round(np.mean(per, 0), 3))
print("IoU of the kept true candidates, 0.5 0.6 0.7 0.8 0.85 0.9 0.95 1:",
      np.histogram(matched_iou, [0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 1])[0])
false, true = (np.concatenate(kinds[k]) for k in ("false", "true"))
print("mean feature, kept false | kept true:")
for i, f in enumerate(FEATURES):
    print(f"  {f:22s} {false[:, i].mean():7.3f} | {true[:, i].mean():7.3f}")
