"""The decoder's small networks in either memory layout on 2 cores: the crossing painter on 30 windows and the joiner on
120 arm pairs (random inputs, untrained weights: only the time counts), each timed 5 times per round in 8 alternating
rounds; the median per call.
usage: python docs/training/s34/layout.py"""
import time

import numpy as np
import torch

from napari_semiconv.joining import CHANNELS as JOINER_CHANNELS
from napari_semiconv.joining import CROP as JOINER_CROP
from napari_semiconv.joining import PAIR_FEATURES, JoinerNet
from napari_semiconv.painting import CHANNELS, CROP, PainterNet

torch.set_num_threads(2)


def seconds(f, n=5) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        f()
    return (time.perf_counter() - t0) / n


last = torch.channels_last
nets = {"painter": (PainterNet().eval(), (torch.randn(30, len(CHANNELS), CROP, CROP),)),
        "joiner": (JoinerNet().eval(), (torch.randn(120, len(JOINER_CHANNELS), JOINER_CROP, JOINER_CROP),
                                        torch.randn(120, len(PAIR_FEATURES))))}
runs = {}
for name, (net, inputs) in nets.items():
    fast = type(net)().eval().to(memory_format=last)
    fast.load_state_dict(net.state_dict())
    runs[f"{name} contiguous"] = lambda net=net, inputs=inputs: net(*inputs)
    runs[f"{name} channels-last"] = lambda net=fast, inputs=inputs: net(inputs[0].contiguous(memory_format=last),
                                                                         *inputs[1:])
times = {k: [] for k in runs}
with torch.inference_mode():
    for f in runs.values():
        f()
    for _ in range(8):
        for k, f in runs.items():
            times[k].append(seconds(f))
for k, v in times.items():
    print(f"{k}: {np.median(v):.4f} s per call")
