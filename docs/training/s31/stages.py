"""Where the time of one 696 x 520 image goes (issue 14's speed goal: 0.5 s end to end on 2 cores): the shipped model
on N validation scenes per style (VAL_SEED0 + 23000 + i), timed in stages (normalize, network forward with its flow
integration, decode) after one warm-up, then cProfile's heaviest functions of the decode.
usage: python docs/training/s31/stages.py N"""
import cProfile
import pstats
import sys
import time

import torch

from napari_semiconv.data.sources import VAL_SEED0
from napari_semiconv.data.synthetic import SceneConfig, make_scene
from napari_semiconv.decode import model_decode_config
from napari_semiconv.model import load_model
from napari_semiconv.models import DEFAULT_MODEL
from napari_semiconv.normalize import normalize
from napari_semiconv.segment import SegmentConfig, decode_outputs, predict_iter

torch.set_num_threads(2)
n = int(sys.argv[1])
model = load_model(DEFAULT_MODEL)
config = model_decode_config(model)
scenes = [make_scene(VAL_SEED0 + 23000 + i, SceneConfig(style=style)) for style in ("brightfield", "fluorescence")
          for i in range(n)]
seg = SegmentConfig(keep_embedding=False)
decode_outputs(next(o for o in predict_iter(model, normalize(scenes[0].image), seg) if isinstance(o, dict)), config)
times = {"normalize": 0.0, "forward": 0.0, "decode": 0.0}
outs = []
for s in scenes:
    t0 = time.perf_counter()
    x = normalize(s.image)
    t1 = time.perf_counter()
    outs.append(next(o for o in predict_iter(model, x, seg) if isinstance(o, dict)))
    t2 = time.perf_counter()
    decode_outputs(outs[-1], config)
    t3 = time.perf_counter()
    times["normalize"] += t1 - t0
    times["forward"] += t2 - t1
    times["decode"] += t3 - t2
print(" ".join(f"{k} {v / len(scenes):.3f} s" for k, v in times.items()), f"per image ({len(scenes)} images)")
prof = cProfile.Profile()
prof.enable()
for o in outs:
    decode_outputs(o, config)
prof.disable()
pstats.Stats(prof).sort_stats("cumulative").print_stats(30)
