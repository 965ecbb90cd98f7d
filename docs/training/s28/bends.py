"""How the shipped model copes with worms that bend more often along their bodies than its training worms
(``SceneConfig.bends``): avS and S@0.5 on validation scenes (VAL_SEED0 + 9500 + i, both styles, 10-30 worms)
at each bends factor. Usage: python docs/training/s28/bends.py SCENES 1,1.5,2 [MODEL]"""
import sys

import torch

from napari_semiconv.data.sources import VAL_SEED0
from napari_semiconv.data.synthetic import SceneConfig, make_scene
from napari_semiconv.metrics import evaluate
from napari_semiconv.model import load_model
from napari_semiconv.models import DEFAULT_MODEL
from napari_semiconv.segment import SegmentConfig, segment

torch.set_num_threads(2)
n = int(sys.argv[1])
model = load_model(sys.argv[3] if len(sys.argv) > 3 else DEFAULT_MODEL)
for b in map(float, sys.argv[2].split(",")):
    for style in ("brightfield", "fluorescence"):
        scenes = [make_scene(VAL_SEED0 + 9500 + i, SceneConfig(style=style, bends=(b, b))) for i in range(n)]
        res = [segment(model, s.image, SegmentConfig(keep_embedding=False)) for s in scenes]
        e = evaluate([r.instances.to_stack() for r in res], [r.scores for r in res], [s.instances for s in scenes])
        print(f"bends {b:g} {style}: avS {e['avS']:.3f} S@0.5 {e['S@0.5']:.3f} AP {e['AP']:.3f}", flush=True)
