"""Is the logistic rescorer the limit? The shipped model decodes training scenes (RESCORE_SEED0 + i, as
fit_rescorer.py) and validation scenes (VAL_SEED0 + 8000 + i, where fit_rescorer chooses its cut, and
VAL_SEED0 + 700 + i, seen by no fit) once; scorers fitted on the training instances' features (the logistic one
on 40 and on N scenes per style, a small MLP on N) are scored at each cut, beside a perfect cut (keep exactly the
instances that match a worm at IoU > 0.5). usage: rescore_mlp.py N VAL"""
import sys
from dataclasses import replace

import numpy as np
import torch

sys.path.insert(0, "benchmarks")
from fit_rescorer import CUTS, RESCORE_SEED0, STYLES, labelled_features

from napari_semiconv.data.sources import VAL_SEED0, validation_scenes
from napari_semiconv.decode import model_decode_config
from napari_semiconv.metrics import evaluate, matches
from napari_semiconv.model import load_model
from napari_semiconv.models import DEFAULT_MODEL
from napari_semiconv.segment import decode_outputs
from napari_semiconv.threshold_search import forward_all

torch.set_num_threads(2)
n, nval = int(sys.argv[1]), int(sys.argv[2])
model = load_model(DEFAULT_MODEL)
plain = replace(model_decode_config(model), rescorer=None, min_score=0.0, features=True)
parts = []  # (x, y) of the first 40 training scenes per style and of the rest
for i, style in enumerate(STYLES):
    scenes = validation_scenes(n, style, seed0=RESCORE_SEED0 + 10**5 * i)
    parts += [labelled_features(model, plain, scenes[:40]), labelled_features(model, plain, scenes[40:])]
print("train instances", [len(y) for _, y in parts], flush=True)


sys.path.insert(0, "docs/training/s23")
from rescore_mlp_fns import logistic, mlp

scorers = {"logistic, 40 scenes/style (as fit_rescorer)": logistic(np.concatenate([parts[0][0], parts[2][0]]),
                                                                np.concatenate([parts[0][1], parts[2][1]]))}
X, Y = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
scorers[f"logistic, {n} scenes/style"] = logistic(X, Y)
for h in (16, 32, 64):
    scorers[f"MLP {h}x{h}, {n} scenes/style"] = mlp(X, Y, hidden=h)
for seed0, where in ((VAL_SEED0 + 8000, "VAL+8000"), (VAL_SEED0 + 700, "VAL+700")):
    for i, style in enumerate(STYLES):
        scenes = validation_scenes(nval, style, seed0=seed0 + 1000 * i)
        decoded = [decode_outputs(o, plain) for o in forward_all(model, [s.image for s in scenes])]
        truths = [s.instances for s in scenes]
        good = [np.isin(np.arange(len(d.instances)), matches(d.instances, t, 0.5)) for d, t in zip(decoded, truths)]
        e = evaluate([d.instances[g] for d, g in zip(decoded, good)], [d.scores[g] for d, g in zip(decoded, good)], truths)
        print(f"{where} {style:12s} {'perfect cut':32s} avS {e['avS']:.3f} S@0.5 {e['S@0.5']:.3f}", flush=True)
        for name, fn in scorers.items():
            sc = [fn(d.features) for d in decoded]
            res = []
            for c in CUTS:
                e = evaluate([d.instances[s >= c] for d, s in zip(decoded, sc)], [s[s >= c] for s in sc], truths)
                res.append(f"{c:g}:{e['avS']:.3f}")
            print(f"{where} {style:12s} {name:32s} " + " ".join(res), flush=True)
