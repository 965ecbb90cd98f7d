"""Does giving each worm only the part of a crossing patch near its own pixels help clumped scenes? An experiment on
the decoder (the shipped network's outputs unchanged): decode._join_crossings gave a whole 2+ patch to every worm
touching it; here a worm is given the patch pixels within REACH px of its own (1-counted) pixels. As run in session 30
the trimming was a replacement of _join_crossings inside this script; it is now the decoder's DecodeConfig.patch_reach
(the same results), which this script sets. Scored on the axes probe's scenes (``axes``: VAL_SEED0 + 9600 + i, at the
defaults and at touching 0.8) or on the model-choice scenes (``choice``: VAL_SEED0 + 1000 + i, as bakeoff.py score
draws them).
usage: python docs/training/s30/trim_patches.py axes|choice SCENES REACH [REACH ...]"""
import sys
from dataclasses import replace

import torch

from napari_semiconv.data.sources import VAL_SEED0, validation_scenes
from napari_semiconv.data.synthetic import SceneConfig, make_scene
from napari_semiconv.decode import model_decode_config
from napari_semiconv.metrics import evaluate
from napari_semiconv.model import load_model
from napari_semiconv.models import DEFAULT_MODEL
from napari_semiconv.normalize import normalize
from napari_semiconv.segment import SegmentConfig, decode_outputs, predict_iter

torch.set_num_threads(2)
which, n, reaches = sys.argv[1], int(sys.argv[2]), [float(r) for r in sys.argv[3:]]
model = load_model(DEFAULT_MODEL)
config = model_decode_config(model)
sets = {"defaults": {}, "touching 0.8": {"touching": 0.8}} if which == "axes" else {"choice": None}  # None: choice
for name, change in sets.items():
    for style in ("brightfield", "fluorescence"):
        scenes = (validation_scenes(n, style, VAL_SEED0 + 1000) if change is None else
                  [make_scene(VAL_SEED0 + 9600 + i, SceneConfig(style=style, **change)) for i in range(n)])
        outs = [next(o for o in predict_iter(model, normalize(s.image), SegmentConfig()) if isinstance(o, dict))
                for s in scenes]
        for reach in [None, *reaches]:
            found = [decode_outputs(o, replace(config, pixel_scale=1.0, patch_reach=reach or 0.0)) for o in outs]
            e = evaluate([f.instances for f in found], [f.scores for f in found], [s.instances for s in scenes])
            print(f"{name} {style} reach {reach or 'whole patch'}: avS {e['avS']:.3f} S@0.5 {e['S@0.5']:.3f} "
                  f"AP {e['AP']:.3f}", flush=True)
