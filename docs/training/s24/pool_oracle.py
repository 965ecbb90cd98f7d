"""How much could choosing among several joinings gain? The shipped model's decodings of N validation scenes per
style (VAL_SEED0 + 8000 + i, where fit_rescorer.py chooses its cut): the shipped joining cut by each worm's true
target (the perfect cut) against the candidates of DecodeConfig.pool (the worms of joinings at probabilities
0.1 ... 0.9 and the pieces alone) chosen by their true target, best first, no piece in two worms (decode._choose).
Target: the fraction of avS's IoU thresholds the candidate's IoU with its nearest true worm passes.
usage: pool_oracle.py N"""
import sys
from dataclasses import replace

import numpy as np
import torch

from napari_semiconv.data.sources import VAL_SEED0, validation_scenes
from napari_semiconv.decode import _choose, model_decode_config
from napari_semiconv.metrics import S_THRESHOLDS, evaluate, iou_matrix
from napari_semiconv.model import load_model
from napari_semiconv.models import DEFAULT_MODEL
from napari_semiconv.segment import decode_outputs
from napari_semiconv.threshold_search import forward_all

torch.set_num_threads(2)
n = int(sys.argv[1])
model = load_model(DEFAULT_MODEL)
plain = replace(model_decode_config(model), rescorer=None, min_score=0.0)
for i, style in enumerate(("brightfield", "fluorescence")):
    scenes = validation_scenes(n, style, seed0=VAL_SEED0 + 8000 + 1000 * i)
    found = {"joined": ([], []), "pool": ([], []), "pool size": [0, 0]}
    for s, o in zip(scenes, forward_all(model, [s.image for s in scenes])):
        multi = (o["count"] >= 2).reshape(-1)
        for name, pool in (("joined", False), ("pool", True)):
            d = decode_outputs(o, replace(plain, pool=pool))
            iou = iou_matrix(d.instances, s.instances).max(1) if len(d.instances) else np.zeros(0)
            t = (iou[:, None] > np.array(S_THRESHOLDS)[None]).mean(1)
            keep = t > 0
            if pool:
                keep &= _choose(torch.from_numpy(d.instances.reshape(len(t), -1)), torch.from_numpy(t), multi).numpy()
                found["pool size"][0] += len(t)
            else:
                found["pool size"][1] += len(t)
            found[name][0].append(d.instances[keep])
            found[name][1].append(t[keep])
    truths = [s.instances for s in scenes]
    for name in ("joined", "pool"):
        r = evaluate(*found[name], truths)
        print(f"{style} {name} oracle: avS {r['avS']:.3f} S@0.5 {r['S@0.5']:.3f} AP {r['AP']:.3f}", flush=True)
    print(f"{style}: {found['pool size'][0]} pool candidates against {found['pool size'][1]} joined worms", flush=True)
