"""The size-matched shipped model on 6 brightfield 2x validation scenes (VAL_SEED0 + 9000 + i): avS at the model's cut
and with none, and each candidate's score / IoU with the nearest true worm (with no cut)."""
from dataclasses import replace

import numpy as np
import torch

from napari_semiconv.data.sources import VAL_SEED0
from napari_semiconv.data.synthetic import SceneConfig, make_scene
from napari_semiconv.decode import model_decode_config
from napari_semiconv.metrics import evaluate
from napari_semiconv.model import load_model
from napari_semiconv.models import DEFAULT_MODEL
from napari_semiconv.segment import SegmentConfig, segment

torch.set_num_threads(2)
model = load_model(DEFAULT_MODEL).with_input_scale(2.0)
cfg = SceneConfig(style="brightfield", scale=(2.0, 2.0), worms=(5, 10))
scenes = [make_scene(VAL_SEED0 + 9000 + i, cfg) for i in range(6)]
dc = model_decode_config(model)
for cut in (0.3, 0.0):
    rs = [segment(model, s.image, SegmentConfig(keep_embedding=False, decode=replace(dc, min_score=cut, features=True))) for s in scenes]
    e = evaluate([r.instances.to_stack() for r in rs], [r.scores for r in rs], [s.instances for s in scenes])
    print(cut, f"avS {e['avS']:.3f} S@0.5 {e['S@0.5']:.3f}", [len(r.scores) for r in rs])
    if cut == 0.0:
        for s, r in zip(scenes, rs):
            st = r.instances.to_stack(); t = s.instances
            inter = (st[:, None] & t[None]).reshape(len(st), len(t), -1).sum(-1); uni = (st[:, None] | t[None]).reshape(len(st), len(t), -1).sum(-1)
            iou = (inter / np.maximum(uni, 1)).max(1) if len(t) else np.zeros(len(st))
            print(" ".join(f"{sc:.2f}/{i:.2f}" for sc, i in sorted(zip(r.scores, iou), reverse=True)))
