"""Where the found worms that cross others lose their pixels. The shipped model decoded as shipped on validation fields
(fit_rescorer.py's, VAL_SEED0 + 8000 + 1000 k + i); each true worm sharing >= 2 % of its pixels with another and found
(one-to-one at IoU > 0.5): its missed and extra pixels, by whether they are truly shared (2+) or single, or another
worm's or background, and whether the model counted them 2+ (the decoder's patches), as shares of the true worms' area.
Then two oracles: each found worm's patch pixels replaced by the patch pixels of its true worm (nothing else changed),
what giving the crossing pixels right would be worth; and the model's count map (0, 1, 2+ worms per pixel) replaced by
the true one (worms per pixel, capped at 2) where the model sees foreground, the pieces, patches, joins and patch pixels
then following the true crossings (the embedding, seeds and foreground unchanged): what a perfect count head is worth.
usage: python docs/training/s32/crossing_pixels.py SCENES"""
import sys

import torch
from scipy.optimize import linear_sum_assignment

from napari_semiconv.data.sources import VAL_SEED0, validation_scenes
from napari_semiconv.decode import model_decode_config
from napari_semiconv.metrics import evaluate, iou_matrix
from napari_semiconv.model import load_model
from napari_semiconv.models import DEFAULT_MODEL
from napari_semiconv.segment import decode_outputs
from napari_semiconv.threshold_search import forward_all

torch.set_num_threads(2)
n = int(sys.argv[1])
model = load_model(DEFAULT_MODEL)
config = model_decode_config(model)
for k, style in enumerate(("brightfield", "fluorescence")):
    scenes = validation_scenes(n, style, VAL_SEED0 + 8000 + 1000 * k)
    share, found, oracle, scores, true_count = {}, [], [], [], []
    for s, o in zip(scenes, forward_all(model, [s.image for s in scenes])):
        d = decode_outputs(o, config)
        p, g = d.instances, s.instances
        patch = ((o["count"] >= 2) & (o["fg"] > config.fg_threshold)).cpu().numpy()
        shared, worms = g.sum(0) >= 2, g.any(0)
        iou = iou_matrix(p, g)
        fixed = p.copy()
        for i, j in zip(*linear_sum_assignment(-iou)):  # loop over matched worms
            if iou[i, j] <= 0.5:
                continue
            fixed[i] = (p[i] & ~patch) | (patch & g[j])
            a, b = p[i], g[j]
            if (b & shared).sum() < 0.02 * b.sum():
                continue
            miss, extra = b & ~a, a & ~b
            for name, v in (("area", b), ("missed shared, in a patch", miss & shared & patch),
                            ("missed shared, not in a patch", miss & shared & ~patch),
                            ("missed single, in a patch", miss & ~shared & patch),
                            ("missed single, not in a patch", miss & ~shared & ~patch),
                            ("extra of another worm, in a patch", extra & worms & patch),
                            ("extra of another worm, not in a patch", extra & worms & ~patch),
                            ("extra background", extra & ~worms)):
                share[name] = share.get(name, 0) + int(v.sum())
        found.append(p)
        oracle.append(fixed)
        scores.append(d.scores)
        true_count.append(decode_outputs({**o, "count": torch.from_numpy(g.sum(0).clip(0, 2)).to(o["count"])}, config))
    print(f"{style}: pixels of found crossing worms, as shares of their area: "
          + ", ".join(f"{key} {v / share['area']:.3f}" for key, v in share.items() if key != "area"))
    for name, stacks, ranks in (("as shipped", found, scores), ("oracle patch pixels", oracle, scores),
                                ("true count", [d.instances for d in true_count], [d.scores for d in true_count])):
        e = evaluate(stacks, ranks, [s.instances for s in scenes])
        print(f"  {name:20s} avS {e['avS']:.3f} S@0.5 {e['S@0.5']:.3f} S@0.9 {e['S@0.9']:.3f}", flush=True)
