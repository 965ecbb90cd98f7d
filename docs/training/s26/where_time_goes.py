"""Where a segmentation's time goes: the shipped model on 4 validation scenes per style (VAL_SEED0 + 700 + i), one
warm-up, then cProfile over the rest; prints wall seconds per scene and the functions with the most cumulative time."""
import cProfile
import pstats
import sys
import time

import torch

from napari_semiconv.data.sources import VAL_SEED0, validation_scenes
from napari_semiconv.model import load_model
from napari_semiconv.models import DEFAULT_MODEL
from napari_semiconv.segment import SegmentConfig, segment

torch.set_num_threads(2)
m = load_model(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_MODEL)
scenes = [s for style in ("brightfield", "fluorescence")
          for s in validation_scenes(4, style, seed0=VAL_SEED0 + 700 + 1000 * (style == "fluorescence"))]
segment(m, scenes[0].image, SegmentConfig(keep_embedding=False))
prof = cProfile.Profile()
t = time.perf_counter()
prof.enable()
for s in scenes:
    segment(m, s.image, SegmentConfig(keep_embedding=False))
prof.disable()
print(f"{(time.perf_counter() - t) / len(scenes):.2f} s per scene ({scenes[0].image.shape})", flush=True)
pstats.Stats(prof).sort_stats("cumulative").print_stats(45)
