"""End-to-end seconds per image (through files, as benchmarks/accuracy.py times them) of two model files alternated in
one process, so that this machine's drift shows as drift, not as a difference: the session-31 shipped model (no
painter) and the shipped one, with and without its painter, on 8 brightfield validation fields (VAL_SEED0 + 66000 + i).
usage: python docs/training/s33/speed.py OLD_MODEL ROUNDS"""
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import tifffile
import torch

from napari_semiconv.batch import segment_files
from napari_semiconv.data.sources import VAL_SEED0, validation_scenes
from napari_semiconv.decode import model_decode_config
from napari_semiconv.model import load_model
from napari_semiconv.models import DEFAULT_MODEL
from napari_semiconv.segment import SegmentConfig

torch.set_num_threads(2)
scenes = validation_scenes(8, "brightfield", VAL_SEED0 + 66000)
runs = (("session-31 shipped", sys.argv[1], False), ("shipped without painter", DEFAULT_MODEL, True),
        ("shipped", DEFAULT_MODEL, False))
with tempfile.TemporaryDirectory() as tmp:
    tmp = Path(tmp)
    paths = [tmp / f"im{i}.tif" for i in range(len(scenes))]
    for p, s in zip(paths, scenes):
        tifffile.imwrite(p, s.image)
    for r in range(int(sys.argv[2])):
        for k, (name, file, plain) in enumerate(runs):
            model = load_model(file)
            decoding = model_decode_config(model)
            config = SegmentConfig(decode=replace(decoding, painter=None) if plain else decoding)
            segment_files(paths[:1], tmp / f"warm{r}{k}", model, config, quiet=True)
            t = time.perf_counter()
            segment_files(paths, tmp / f"out{r}{k}", model, config, quiet=True)
            print(f"round {r}: {name:25s} {(time.perf_counter() - t) / len(paths):.3f} s/image", flush=True)
