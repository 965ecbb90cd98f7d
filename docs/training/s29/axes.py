"""How the shipped model copes when worms or fields leave the generator's default ranges along one axis at a time
(as docs/training/s28/bends.py did for bends): avS, S@0.5 and AP on validation scenes (VAL_SEED0 + 9600 + i, both
styles), segmented as they come (no size matching). Usage: python docs/training/s29/axes.py SCENES [MODEL]"""
import sys

import torch

from napari_semiconv.data.sources import VAL_SEED0
from napari_semiconv.data.synthetic import SceneConfig, make_scene
from napari_semiconv.metrics import evaluate
from napari_semiconv.model import load_model
from napari_semiconv.models import DEFAULT_MODEL
from napari_semiconv.segment import SegmentConfig, segment

AXES = {"defaults": {}, "short worms (80-150 px)": {"length": (80.0, 150.0)},
        "long worms (300-450 px)": {"length": (300.0, 450.0)},
        "thin worms (half-width 4-6 px)": {"half_width": (4.0, 6.0)},
        "thick worms (half-width 10-13 px)": {"half_width": (10.0, 13.0)},
        "mostly dead (straight) worms (80-100%)": {"dead_fraction": (0.8, 1.0)},
        "crowded (30-45 worms)": {"worms": (30, 45)},
        "most worms laid against another (touching 0.8)": {"touching": 0.8}}

torch.set_num_threads(2)
n = int(sys.argv[1])
model = load_model(sys.argv[2] if len(sys.argv) > 2 else DEFAULT_MODEL)
for name, change in AXES.items():
    for style in ("brightfield", "fluorescence"):
        scenes = [make_scene(VAL_SEED0 + 9600 + i, SceneConfig(style=style, **change)) for i in range(n)]
        res = [segment(model, s.image, SegmentConfig(keep_embedding=False)) for s in scenes]
        e = evaluate([r.instances.to_stack() for r in res], [r.scores for r in res], [s.instances for s in scenes])
        print(f"{name} {style}: avS {e['avS']:.3f} S@0.5 {e['S@0.5']:.3f} AP {e['AP']:.3f}", flush=True)
