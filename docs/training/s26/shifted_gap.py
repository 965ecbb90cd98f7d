"""Why does size matching leave the shifted domains of benchmarks/finetune.py so far below the model's own scenes?
On validation seeds of each domain (VAL_SEED0 + 9000 + i, never finetune.py's), the shipped model:
(a) as finetune.py's size matching does (the image resized inside the model, outputs decoded at full size),
(b) the image shrunk by the scale first (area averaging), segmented as a 1x image, masks grown back (nearest),
(c) the same scene config at scale 1 (1x worms, the worm count scaled by the field's area in worm units).
Also the mean foreground probability on true worm pixels and on background, and worms found against true."""
import sys

import numpy as np
import torch
import torch.nn.functional as F

from napari_semiconv.data.sources import VAL_SEED0
from napari_semiconv.data.synthetic import SceneConfig, make_scene
from napari_semiconv.metrics import evaluate
from napari_semiconv.model import load_model
from napari_semiconv.models import DEFAULT_MODEL
from napari_semiconv.segment import SegmentConfig, segment

torch.set_num_threads(2)
n = int(sys.argv[1]) if len(sys.argv) > 1 else 6
model = load_model(DEFAULT_MODEL)
domains = {"fluorescence 1.7x": (SceneConfig(style="fluorescence", scale=(1.7, 1.7), worms=(6, 12)), 1.7),
           "brightfield 2x": (SceneConfig(style="brightfield", scale=(2.0, 2.0), worms=(5, 10)), 2.0)}
for name, (cfg, s) in domains.items():
    scenes = [make_scene(VAL_SEED0 + 9000 + i, cfg) for i in range(n)]
    one = SceneConfig(style=cfg.style, worms=(round(cfg.worms[0] * s * s), round(cfg.worms[1] * s * s)))
    ones = [make_scene(VAL_SEED0 + 9000 + i, one) for i in range(n)]
    for way in ("a", "b", "c"):
        preds, scores, truths, fgw, fgb = [], [], [], [], []
        for sc, o in zip(scenes, ones):
            if way == "a":
                r = segment(model.with_input_scale(s), sc.image, SegmentConfig(keep_embedding=False))
                st, truth = r.instances.to_stack(), sc.instances
            elif way == "b":
                small = F.interpolate(torch.from_numpy(sc.image.astype(np.float32))[None, None], scale_factor=1 / s,
                                      mode="area")[0, 0].numpy()
                r = segment(model, small, SegmentConfig(keep_embedding=False))
                st = r.instances.to_stack()
                st = (F.interpolate(torch.from_numpy(st.astype(np.float32))[None], size=sc.image.shape, mode="nearest")[0]
                      .numpy() > 0.5) if len(st) else np.zeros((0, *sc.image.shape), bool)
                truth = sc.instances
            else:
                r = segment(model, o.image, SegmentConfig(keep_embedding=False))
                st, truth = r.instances.to_stack(), o.instances
            fg = r.foreground if r.foreground.shape == truth.shape[1:] else None
            if fg is not None:
                worm = truth.any(0)
                fgw.append(float(fg[worm].mean()))
                fgb.append(float(fg[~worm].mean()))
            preds.append(st)
            scores.append(r.scores)
            truths.append(truth)
        e = evaluate(preds, scores, truths)
        print(f"{name} ({way}): avS {e['avS']:.3f} S@0.5 {e['S@0.5']:.3f} fg on worms {np.mean(fgw) if fgw else -1:.2f} "
              f"on background {np.mean(fgb) if fgb else -1:.2f} found {[len(p) for p in preds]} "
              f"true {[len(t) for t in truths]}", flush=True)
