"""Would shape features tell fragments and mergers from whole worms? As rescore_mlp.py (the shipped model's
instances in RESCORE_SEED0 + i training scenes; cut chosen on VAL_SEED0 + 8000 + i, also shown on VAL_SEED0 + 700
+ i), with each instance's skeleton added: its end points, branch points, ends lying on a crossing it takes part
in (a piece cut off at a crossing ends there), and its length against the image's median (log).
usage: rescore_shape.py N VAL"""
import sys
from dataclasses import replace

import numpy as np
import torch
from scipy import ndimage as ndi
from skimage.morphology import skeletonize

sys.path.insert(0, "benchmarks")
sys.path.insert(0, "docs/training/s23")
from fit_rescorer import CUTS, RESCORE_SEED0, STYLES

from napari_semiconv.data.sources import VAL_SEED0, validation_scenes
from napari_semiconv.decode import model_decode_config
from napari_semiconv.metrics import S_THRESHOLDS, evaluate, iou_matrix, matches
from napari_semiconv.model import load_model
from napari_semiconv.models import DEFAULT_MODEL
from napari_semiconv.segment import decode_outputs
from napari_semiconv.threshold_search import forward_all

torch.set_num_threads(2)
n, nval = int(sys.argv[1]), int(sys.argv[2])
model = load_model(DEFAULT_MODEL)
plain = replace(model_decode_config(model), rescorer=None, min_score=0.0, features=True)
K = np.ones((3, 3))


def shape_features(stack, multi):
    """(N, 4): end points, branch points, ends on a crossing of the instance, log length / median length."""
    rows = []
    for m in stack:  # loop over instances
        sl = ndi.find_objects(m.astype(np.uint8))[0]
        sl = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in sl)
        sk = skeletonize(m[sl])
        nb = ndi.convolve(sk.astype(np.uint8), K.astype(np.uint8), mode="constant") - 1
        ends, branches = sk & (nb == 1), sk & (nb >= 3)
        on_cross = ndi.binary_dilation(multi[sl] & m[sl], iterations=3)
        rows.append([ends.sum(), ndi.label(branches, K)[1], (ends & on_cross).sum(), max(sk.sum(), 1)])
    f = np.array(rows, np.float32).reshape(-1, 4)
    f[:, 3] = np.log(f[:, 3] / np.median(f[:, 3])) if len(f) else f[:, 3]
    return f


def decode(scenes):
    out = []
    for s, o in zip(scenes, forward_all(model, [s.image for s in scenes])):
        d = decode_outputs(o, plain)
        multi = (o["count"] >= 2).cpu().numpy()
        out.append((d, np.concatenate([d.features, shape_features(d.instances, multi)], 1), s.instances))
    return out


def target(d, truth):
    matched = matches(d.instances, truth, 0.5)
    iou = np.zeros(len(d.instances))
    iou[matched[matched >= 0]] = iou_matrix(d.instances, truth)[matched[matched >= 0], np.nonzero(matched >= 0)[0]]
    return (iou[:, None] > np.array(S_THRESHOLDS)[None]).mean(1)


train = [r for i, style in enumerate(STYLES) for r in decode(validation_scenes(n, style, seed0=RESCORE_SEED0 + 10**5 * i))]
X = np.concatenate([f for _, f, _ in train])
Y = np.concatenate([target(d, t) for d, _, t in train])
print("train instances", len(Y), flush=True)
from rescore_mlp_fns import logistic, mlp

base = X.shape[1] - 4
scorers = {"logistic, shipped features": (logistic(X[:, :base], Y), base),
           "logistic, + shape": (logistic(X, Y), None),
           "MLP 16x16, shipped features": (mlp(X[:, :base], Y, 16), base),
           "MLP 16x16, + shape": (mlp(X, Y, 16), None),
           "MLP 32x32, + shape": (mlp(X, Y, 32), None)}
for seed0, where in ((VAL_SEED0 + 8000, "VAL+8000"), (VAL_SEED0 + 700, "VAL+700")):
    for i, style in enumerate(STYLES):
        val = decode(validation_scenes(nval, style, seed0=seed0 + 1000 * i))
        truths = [t for _, _, t in val]
        for name, (fn, cols) in scorers.items():
            sc = [fn(f[:, :cols]) for _, f, _ in val]
            res = []
            for c in CUTS:
                e = evaluate([d.instances[s >= c] for (d, _, _), s in zip(val, sc)], [s[s >= c] for s in sc], truths)
                res.append(f"{c:g}:{e['avS']:.3f}")
            print(f"{where} {style:12s} {name:30s} " + " ".join(res), flush=True)
