"""Is decoding at full resolution what fails on 2x-magnified scenes? The shipped model on 6 of accuracy.py's
2x-magnified brightfield test scenes (TEST_SEED0 + 2000 + i), each image shrunk 2x by area averaging, segmented at the
model's own scale (so the decoder, joiner and rescorer all work in training pixels), its masks grown back 2x.
Compare: segment(..., worm_width=24) on the same scenes (the decoder on full-size outputs)."""
import numpy as np
import torch
import torch.nn.functional as F

from napari_semiconv.data.sources import TEST_SEED0
from napari_semiconv.data.synthetic import SceneConfig, make_scene
from napari_semiconv.metrics import evaluate
from napari_semiconv.model import load_model
from napari_semiconv.models import DEFAULT_MODEL
from napari_semiconv.segment import SegmentConfig, segment

torch.set_num_threads(2)
scenes = [make_scene(TEST_SEED0 + 2000 + i, SceneConfig(style="brightfield", scale=(2.0, 2.0))) for i in range(6)]
model = load_model(DEFAULT_MODEL)
for name in ("decoded at the model's scale", "segment --worm-width 24"):
    preds, scores = [], []
    for s in scenes:
        if name.startswith("segment"):
            r = segment(model, s.image, SegmentConfig(keep_embedding=False, worm_width=24))
            preds.append(r.instances.to_stack())
        else:
            small = F.interpolate(torch.from_numpy(s.image.astype(np.float32))[None, None], scale_factor=0.5,
                                  mode="area")[0, 0].numpy()
            r = segment(model, small, SegmentConfig(keep_embedding=False))
            st = r.instances.to_stack()
            preds.append(st.repeat(2, 1).repeat(2, 2)[:, :s.image.shape[0], :s.image.shape[1]] if len(st)
                         else np.zeros((0, *s.image.shape), np.uint8))
        scores.append(r.scores)
    e = evaluate(preds, scores, [s.instances for s in scenes])
    print(f"{name}: avS {e['avS']:.3f} S@0.5 {e['S@0.5']:.3f} worms {[len(p) for p in preds]} "
          f"truth {[len(s.instances) for s in scenes]}", flush=True)
