"""Where the time of one 696 x 520 image goes (issue 14's speed goal: 0.5 s end to end on 2 cores): the shipped model
on N validation scenes per style (VAL_SEED0 + 23000 + i), timed in stages (normalize, network forward with its flow
integration, decode) after one warm-up, then cProfile's heaviest functions of the decode; then the network alone on one
field, and its count refiner alone, with the convolution weights laid out contiguous and channels-last, and a training
step (whole network, a 256 x 256 crop) in either layout.
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


def seconds(step, n=6) -> float:
    """Mean seconds of ``step()`` over n calls after one warm-up."""
    step()
    t0 = time.perf_counter()
    for _ in range(n):
        step()
    return (time.perf_counter() - t0) / n


x = torch.from_numpy(normalize(scenes[0].image))[None, None]
crop = x[..., :256, :256].clone()
refiner_input = torch.randn(1, 6, *x.shape[-2:])


def train_step():
    out = model(crop)
    (out.phi.square().mean() + out.count_logit.mean()).backward()


for layout in (torch.contiguous_format, torch.channels_last):
    model.to(memory_format=layout).eval()
    with torch.inference_mode():
        forward, refiner = seconds(lambda: model(x)), seconds(lambda: model.count_refiner(refiner_input))
    model.train()
    print(f"{layout}: network {forward:.3f} s, count refiner {refiner:.3f} s per field; training step "
          f"{seconds(train_step, 4):.3f} s", flush=True)
