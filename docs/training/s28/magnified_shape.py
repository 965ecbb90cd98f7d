"""Why size matching left brightfield 2x scenes (benchmarks/finetune.py's domain) far below 1x scenes.

On validation seeds (VAL_SEED0 + 9000 + i, never a benchmark's), the shipped model on brightfield scenes:
  2x      worms magnified 2x (5-10 per field), segmented size-matched (the model sees the image resized 1/2);
  shrunk  the same scenes shrunk 2x first (area averaging; truth likewise) and segmented as 1x images;
  window  1x scenes of the same geometry: a 260 x 348 window of a 1x field with 20-40 worms (so 5-10 worms of
          1x size in a field of the shrunk scenes' size, most cut by its border);
  1x      whole 1x fields with 20-40 worms.
For each: S at each IoU threshold, avS, the median IoU of the matched worms (those touching the border / not),
and where the matched worms' IoU is lost (mean fraction of their union): predicted on background, truth that no
instance covers, pixels given to or taken from other worms.
Usage: python docs/training/s28/magnified_shape.py SCENES WAYS [STYLE MAG WORMS_LOW WORMS_HIGH] (e.g. 20
2x,shrunk,window,1x; session 29: 20 2x,shrunk,window fluorescence 1.7 6 12, finetune.py's other domain, the
window and the 1x fields then hold MAG^2 as many worms)."""
import sys

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment

from napari_semiconv.data.sources import VAL_SEED0
from napari_semiconv.data.synthetic import SceneConfig, make_scene
from napari_semiconv.metrics import S_THRESHOLDS, iou_matrix, s_score
from napari_semiconv.model import load_model
from napari_semiconv.models import DEFAULT_MODEL
from napari_semiconv.segment import SegmentConfig, segment

torch.set_num_threads(2)
n = int(sys.argv[1])
ways = sys.argv[2].split(",")
model = load_model(DEFAULT_MODEL)
STYLE, MAG, LOW, HIGH = (sys.argv[3], float(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])) if len(sys.argv) > 3 \
    else ("brightfield", 2.0, 5, 10)
magnified = SceneConfig(style=STYLE, scale=(MAG, MAG), worms=(LOW, HIGH))
plain = SceneConfig(style=STYLE, worms=(round(LOW * MAG**2), round(HIGH * MAG**2)))
WINDOW = (0, 0, round(520 / MAG), round(696 / MAG))
settings = {"2x": (magnified, model.with_input_scale(MAG)), "shrunk": (magnified, model),
            "window": (plain, model), "1x": (plain, model)}


def shrunk(image, instances):
    img = F.interpolate(torch.from_numpy(image.astype(np.float32))[None, None], scale_factor=1 / MAG, mode="area")
    small = F.interpolate(torch.from_numpy(instances.astype(np.float32))[None], size=img.shape[-2:], mode="area")
    return img[0, 0].numpy(), small[0].numpy() > 0.5


for way in ways:
    cfg, m = settings[way]
    S = {t: [] for t in S_THRESHOLDS}
    border, inner, spill, uncovered, swapped = [], [], [], [], []
    for i in range(n):
        sc = make_scene(VAL_SEED0 + 9000 + i, cfg, WINDOW if way == "window" else None)
        img, g = shrunk(sc.image, sc.instances) if way == "shrunk" else (sc.image, sc.instances)
        g = g[g.any((1, 2))]
        p = segment(m, img, SegmentConfig(keep_embedding=False)).instances.to_stack()
        for t in S_THRESHOLDS:
            S[t].append(s_score(p, g, t))
        if not len(p):
            continue
        iou = iou_matrix(p, g)
        any_p, any_g = p.any(0), g.any(0)
        for a, b in zip(*linear_sum_assignment(-iou)):
            if iou[a, b] < 0.3:
                continue
            edge = g[b][0].any() or g[b][-1].any() or g[b][:, 0].any() or g[b][:, -1].any()
            (border if edge else inner).append(iou[a, b])
            union = (p[a] | g[b]).sum()
            spill.append((p[a] & ~any_g).sum() / union)
            uncovered.append((g[b] & ~any_p).sum() / union)
            swapped.append(((g[b] & ~p[a] & any_p).sum() + (p[a] & ~g[b] & any_g).sum()) / union)
    matched = border + inner
    print(f"{way}: avS {np.mean([np.mean(v) for v in S.values()]):.3f} S " +
          " ".join(f"@{t} {np.mean(v):.3f}" for t, v in S.items()) +
          f"; matched {len(matched)} median IoU {np.median(matched):.3f} (touching the border {len(border)}: "
          f"{np.median(border):.3f}, inside {len(inner)}: {np.median(inner) if inner else float('nan'):.3f}); IoU lost "
          f"to background {np.mean(spill):.3f}, uncovered {np.mean(uncovered):.3f}, other worms {np.mean(swapped):.3f}",
          flush=True)
