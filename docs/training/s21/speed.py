"""Seconds per image of segment() (4 brightfield validation scenes VAL_SEED0 + 1000 + i, 2 threads) for each model file given."""
import sys
import time

import torch

from napari_semiconv.data.sources import VAL_SEED0, validation_scenes
from napari_semiconv.model import load_model
from napari_semiconv.segment import SegmentConfig, segment

torch.set_num_threads(2)
scenes = validation_scenes(4, "brightfield", VAL_SEED0 + 1000)
for path in sys.argv[1:]:
    m = load_model(path)
    segment(m, scenes[0].image, SegmentConfig(keep_embedding=False))
    t = time.perf_counter()
    for s in scenes:
        segment(m, s.image, SegmentConfig(keep_embedding=False))
    print(path, (time.perf_counter() - t) / len(scenes))
