"""Which pool rescorer to fit: the data it sees (1x scenes only, or also worms magnified 1.4x ... 3x as a
size-matched user model sees them) and its size (two hidden layers of 16 or 64), three fitting seeds each and
their mean (an ensemble), at an equal set of decoded scenes. The shipped model's candidates are decoded once
(fit_rescorer.py's scenes and seeds: 150 training scenes per style at 1x and 100 magnified; validation 40 per style
at 1x, VAL_SEED0 + 8000 + i, and 40 magnified, VAL_SEED0 + 20000 + i); each rescorer then scores and chooses
among the same candidates (decode._choose, as the pool decoder does), at the cuts 0.2, 0.3, 0.4.

    python docs/training/s27/rescorer_variants.py [train scenes per style] [magnified per style] [val per style]
"""
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parents[3] / "benchmarks"))
from fit_rescorer import RESCORE_SEED0, STYLES, forwards, labelled_features, magnified_scenes, plain_scenes

from napari_semiconv.data.sources import VAL_SEED0
from napari_semiconv.decode import _choose, model_decode_config
from napari_semiconv.metrics import evaluate
from napari_semiconv.model import load_model
from napari_semiconv.models import DEFAULT_MODEL
from napari_semiconv.rescoring import Rescorer, fit_rescorer
from napari_semiconv.segment import decode_outputs

torch.set_num_threads(2)
n_train, n_mag, n_val = (int(a) for a in (sys.argv[1:] + ["150", "100", "40"][len(sys.argv) - 1:]))
CUTS = (0.2, 0.3, 0.4)
t0 = time.time()
model = load_model(DEFAULT_MODEL)
shipped = model_decode_config(model)
plain = replace(shipped, rescorer=None, min_score=0.0, features=True, pool=True)
data = {}
for i, style in enumerate(STYLES):
    data[("1x", style)] = labelled_features(model, plain, *plain_scenes(n_train, style, RESCORE_SEED0 + 10**5 * i))
    data[("mag", style)] = labelled_features(model, plain, *magnified_scenes(n_mag, style, RESCORE_SEED0 + 10**5 * (i + 2)))
    print(f"{time.time() - t0:.0f} s: training features of {style}: "
          + ", ".join(f"{k[0]} {len(v[1])}" for k, v in data.items() if k[1] == style), flush=True)

val = {}
for i, style in enumerate(STYLES):
    for kind, (scenes, mags) in (("1x", plain_scenes(n_val, style, VAL_SEED0 + 8000 + 1000 * i)),
                                 ("mag", magnified_scenes(n_val, style, VAL_SEED0 + 20000 + 1000 * i))):
        cands = []
        for out, m, scene in zip(forwards(model, scenes, mags), mags, scenes):
            d = decode_outputs(out, replace(plain, pixel_scale=m))
            multi = (out["count"] >= 2) & (out["fg"] > plain.fg_threshold)
            cands.append((torch.from_numpy(d.instances.reshape(len(d.instances), -1)), torch.from_numpy(d.features),
                          multi.reshape(-1), d.instances, scene.instances))
        val[(kind, style)] = cands
    print(f"{time.time() - t0:.0f} s: validation candidates of {style}", flush=True)


def score(probability) -> dict:
    """avS per validation set and cut for ``probability``: (N, F) features -> (N,) scores."""
    res = {}
    for key, cands in val.items():
        scored = [(probability(f), members, multi, inst) for members, f, multi, inst, _ in cands]
        truths = [c[4] for c in cands]
        for cut in CUTS:
            preds, scs = [], []
            for s, members, multi, inst in scored:
                keep = (s >= cut) & _choose(members, s, multi) if len(s) else torch.zeros(0, dtype=torch.bool)
                preds.append(inst[keep.numpy()])
                scs.append(s[keep].numpy())
            res[(key, cut)] = evaluate(preds, scs, truths)["avS"]
    return res


def show(name, res):
    line = " ".join(f"{k[0]}-{k[1][:2]} " + "/".join(f"{res[(k, c)]:.3f}" for c in CUTS) for k in val)
    means = [np.mean([res[(k, c)] for k in val]) for c in CUTS]
    ones = [np.mean([res[(k, c)] for k in val if k[0] == "1x"]) for c in CUTS]
    print(f"{name:28s} {line} | mean " + "/".join(f"{m:.3f}" for m in means)
          + " | 1x mean " + "/".join(f"{m:.3f}" for m in ones), flush=True)


print(f"avS at cuts {CUTS}", flush=True)
show("shipped rescorer", score(lambda f: shipped.rescorer(f)))
for mix in ("1x", "1x+mag"):
    keys = [k for k in data if k[0] == "1x" or mix == "1x+mag"]
    x = np.concatenate([data[k][0] for k in keys])
    y = np.concatenate([data[k][1] for k in keys])
    for hidden in ((16, 16), (64, 64)):
        fits: list[Rescorer] = [fit_rescorer(x, y, hidden=hidden, seed=s) for s in range(3)]
        for s, r in enumerate(fits):
            show(f"{mix} {hidden} seed {s}", score(r))
        show(f"{mix} {hidden} mean of 3", score(lambda f, fits=fits: torch.stack([r(f) for r in fits]).mean(0)))
print(f"{time.time() - t0:.0f} s in all")
