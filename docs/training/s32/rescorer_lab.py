"""Rescorer variants refitted on cached candidates (pool_cache.py) and scored by the decoder's choice, in seconds.

The decoder's choice is replayed from the cache: candidates best score first, each kept when its score passes the cut
and it shares no pixel outside the crossings with one kept before (decode._choose); avS and S@0.5 per image from the
kept candidates' IoU with the true worms (metrics.s_of_iou), averaged over the scenes of each style. Variants:
- base: the shipped recipe (rescoring.fit_rescorer on the 19 features, target the fraction of IoU thresholds passed);
- seeds: the mean score of 5 fits with different seeds;
- context: a second rescorer on the features plus each candidate's place among its rivals, read from the first
  rescorer's scores (out-of-fold on the fitting scenes: two halves, each scored by the rescorer fitted on the other):
  the best score of a rival (a candidate sharing a pixel outside the crossings), its margin over it, its rank among
  its rivals, the best score of a candidate containing it and of one it contains, its rivals' count, whether the
  first rescorer's choice keeps it;
- binary: the target 1 when the IoU passes 0.5.
usage: python docs/training/s32/rescorer_lab.py TRAIN.npz VAL.npz"""
import sys

import numpy as np
import torch

from napari_semiconv.metrics import S_THRESHOLDS, s_of_iou
from napari_semiconv.rescoring import fit_rescorer

torch.set_num_threads(1)  # tiny fits: a second thread only waits
CUTS = (0.1, 0.2, 0.3, 0.4, 0.5)
CONTEXT = ("score", "rival_best", "margin", "rank", "container_best", "contained_best", "log_rivals", "kept")


def load(path):
    d = np.load(path, allow_pickle=True)
    return [dict(zip(d.files, v)) for v in zip(*(d[k] for k in d.files))]


def quality(scene, binary=False):
    """(N,) the fraction of avS's IoU thresholds each candidate's best IoU passes (or whether it passes 0.5)."""
    best = scene["iou"].max(1) if scene["iou"].shape[1] else np.zeros(len(scene["iou"]))
    return (best > 0.5).astype(float) if binary else (best[:, None] > np.array(S_THRESHOLDS)).mean(1)


def apply(rescorer, x):
    """The rescorer's probabilities for ``x (N, F)`` (all columns, in order)."""
    z = (torch.as_tensor(x, dtype=torch.float32) - torch.tensor(rescorer.mean)) / torch.tensor(rescorer.scale)
    for i, (w, b) in enumerate(rescorer.layers):
        z = z @ torch.tensor(w).T + torch.tensor(b)
        z = z if i == len(rescorer.layers) - 1 else z.clamp_min(0)
    return torch.sigmoid(z[:, 0]).numpy()


def choose(scene, scores, cut):
    """(N,) bool: the decoder's choice (decode._choose) among the candidates passing ``cut``."""
    keep = np.zeros(len(scores), bool)
    rivals = scene["own_shared"] > 0
    for i in np.argsort(-scores, kind="stable"):
        if scores[i] >= cut and not (rivals[i] & keep).any():
            keep[i] = True
    return keep


def context(scene, scores, cut):
    """(N, len(CONTEXT)) each candidate's place among its rivals by the first rescorer's ``scores``."""
    n = len(scores)
    rivals = (scene["own_shared"] > 0) & ~np.eye(n, dtype=bool)
    shared, area = scene["shared"], scene["area"]
    contains = (shared >= area[None, :]) & (area[:, None] > area[None, :])  # [i, j]: i contains j
    best = lambda m: np.where(m, scores[None], 0).max(1) if n else np.zeros(0)
    rival_best = best(rivals)
    rank = (rivals & (scores[None] > scores[:, None])).sum(1)
    return np.stack([scores, rival_best, scores - rival_best, np.log1p(rank), best(contains.T), best(contains),
                     np.log1p(rivals.sum(1)), choose(scene, scores, cut).astype(float)], 1)


def scored(scenes, scores, cut):
    """{style: (avS, S@0.5)} of the choice at ``cut``."""
    out = {}
    for k in (0, 1):
        s = []
        for scene, sc in zip(scenes, scores):
            if scene["style"] != k:
                continue
            iou = scene["iou"][choose(scene, sc, cut)]
            s.append([s_of_iou(iou, t) for t in S_THRESHOLDS])
        s = np.array(s)
        out[k] = (s.mean(), s[:, 0].mean())
    return out


def fit_scores(x_train, y, x_val, seeds=(0,)):
    """Mean scores (M,) per validation scene of rescorers fitted with each seed, and the rescorers."""
    fits = [fit_rescorer(np.concatenate(x_train), np.concatenate(y), seed=s) for s in seeds]
    val_scores = [np.mean([apply(r, x) for r in fits], 0) for x in x_val]
    return val_scores, fits


def report(name, val, val_scores):
    rows = {c: scored(val, val_scores, c) for c in CUTS}
    best = max(CUTS, key=lambda c: rows[c][0][0] + rows[c][1][0])
    line = " ".join(f"{c:g}:{rows[c][0][0]:.3f}/{rows[c][1][0]:.3f}" for c in CUTS)
    print(f"{name:28s} best cut {best:g}: bf {rows[best][0][0]:.3f} S@0.5 {rows[best][0][1]:.3f}, fl {rows[best][1][0]:.3f}"
          f" S@0.5 {rows[best][1][1]:.3f}, mean {(rows[best][0][0] + rows[best][1][0]) / 2:.4f} | {line}", flush=True)


def oof(train, x, y, seed=0):
    """Out-of-fold scores on the fitting scenes: each half scored by the rescorer fitted on the other."""
    half = np.arange(len(train)) % 2
    out = [None] * len(train)
    for h in (0, 1):
        r = fit_rescorer(np.concatenate([x[i] for i in range(len(train)) if half[i] != h]),
                         np.concatenate([y[i] for i in range(len(train)) if half[i] != h]), seed=seed)
        for i in np.nonzero(half == h)[0]:
            out[i] = apply(r, x[i])
    return out


def main():
    train, val = load(sys.argv[1]), load(sys.argv[2])
    print(f"{len(train)} fitting scenes ({sum(len(s['area']) for s in train)} candidates), {len(val)} validation scenes")
    xt, xv = [s["features"] for s in train], [s["features"] for s in val]
    y = [quality(s) for s in train]
    base = fit_scores(xt, y, xv)[0]
    report("base", val, base)
    report("base, 5 seeds", val, fit_scores(xt, y, xv, seeds=range(5))[0])
    report("binary target", val, fit_scores(xt, [quality(s, True) for s in train], xv)[0])
    first = oof(train, xt, y)
    for cut in (0.2,):
        ct = [np.concatenate([x, context(s, f, cut)], 1) for x, f, s in zip(xt, first, train)]
        cv = [np.concatenate([x, context(s, f, cut)], 1) for x, f, s in zip(xv, base, val)]
        report(f"context (kept at {cut:g})", val, fit_scores(ct, y, cv)[0])
        report("context, 5 seeds", val, fit_scores(ct, y, cv, seeds=range(5))[0])


if __name__ == "__main__":
    main()
