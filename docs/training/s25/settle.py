"""Settled points: the shipped model on 6 validation scenes per style (VAL_SEED0 + 500 + i) with integrate(settle=False)
against settle=True: avS, seconds per scene, how far the votes moved. (Run beside fit_rescorer: seconds are slowed
for both alike.)"""
import time

import torch

from napari_semiconv import flow
from napari_semiconv.data.sources import VAL_SEED0, validation_scenes
from napari_semiconv.metrics import evaluate
from napari_semiconv.model import load_model
from napari_semiconv.models import DEFAULT_MODEL
from napari_semiconv.segment import SegmentConfig, segment

torch.set_num_threads(2)
m = load_model(DEFAULT_MODEL)
orig = flow.integrate
n = 6
for style in ("brightfield", "fluorescence"):
    scenes = validation_scenes(n, style, seed0=VAL_SEED0 + 500 + 1000 * (style == "fluorescence"))
    for settle in (False, True):
        captured = []
        def f(*a, settle=settle, captured=captured, **k):
            e = orig(*a, **k, settle=settle)
            captured.append(e)
            return e
        flow.integrate = f
        t = time.perf_counter()
        rs = [segment(m, s.image, SegmentConfig(keep_embedding=False)) for s in scenes]
        dt = (time.perf_counter() - t) / n
        e = evaluate([r.instances.to_stack() for r in rs], [r.scores for r in rs], [s.instances for s in scenes])
        print(style, "settle" if settle else "full", f"avS {e['avS']:.4f} S@0.5 {e['S@0.5']:.4f} s/scene {dt:.2f}", flush=True)
        if settle: news = captured
        else: olds = captured
    d = torch.cat([torch.hypot(*(a - b).T) for a, b in zip(olds, news)])
    print(style, f"ends moved: median {d.median():.3f} px, >2 px {(d > 2).float().mean():.4f}, >5 px {(d > 5).float().mean():.4f}", flush=True)
