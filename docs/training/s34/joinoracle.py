"""Joining headroom of the shipped piece model (session 34: its pool of joinings, rescorer choice and painter) on
validation scenes (VAL_SEED0 + 700 / 1700 + i): its predicted pieces joined by its joiner (the pool), by the truth at the
joiner's candidate arm pairs, by the truth at those pairs and wherever two pieces touch, and grouped by their true worm
(each oracle one joining: the rescorer then only cuts); with the shipped rescorer's cut and without (no choice, no cut).
Session 22's script (docs/training/s22/joinoracle.py) patched decode.join, which the pool no longer calls.
usage: python docs/training/s34/joinoracle.py N"""
import sys
from dataclasses import replace

import numpy as np
import torch

import napari_semiconv.decode as dec
from napari_semiconv.data.sources import VAL_SEED0, validation_scenes
from napari_semiconv.decode import model_decode_config
from napari_semiconv.joining import candidate_pairs, join_in_order, join_readings
from napari_semiconv.metrics import evaluate
from napari_semiconv.model import load_model
from napari_semiconv.models import DEFAULT_MODEL
from napari_semiconv.segment import decode_outputs
from napari_semiconv.threshold_search import forward_all

sys.path.insert(0, "benchmarks")
from fit_joiner import owners

torch.set_num_threads(2)
model = load_model(DEFAULT_MODEL)
base = model_decode_config(model)
truth = {}


def touching(pieces):
    """(M, 2) int pairs of pieces that touch (4-neighbours)."""
    owner = np.where(pieces.any(0), pieces.argmax(0) + 1, 0)
    pairs = np.concatenate([np.stack([owner[1:].ravel(), owner[:-1].ravel()], 1),
                            np.stack([owner[:, 1:].ravel(), owner[:, :-1].ravel()], 1)])
    pairs = pairs[(pairs > 0).all(1) & (pairs[:, 0] != pairs[:, 1])] - 1
    return np.unique(np.sort(pairs, 1), axis=0)


def union(n, groups):
    parent = np.arange(n)

    def root(i):
        while parent[i] != i:
            i = parent[i]
        return i
    for a, b in groups:
        parent[root(a)] = root(b)
    return np.unique([root(i) for i in range(n)], return_inverse=True)[1].reshape(-1)


def at_pairs(pieces, multi, image, joiner, touch=False):
    _, patches, pairs = candidate_pairs(pieces, multi, image)
    own = owners(pieces, truth["ins"])
    same = [m for m, (k, a, b, _, _) in enumerate(pairs) if own[patches[k].arms[a].piece] == own[patches[k].arms[b].piece]]
    worm = join_in_order(len(pieces), patches, pairs, same)
    if not touch:
        return worm
    extra = [(a, b) for a, b in touching(pieces) if own[a] == own[b]]
    first = {w: i for i, w in reversed(list(enumerate(worm)))}
    return union(len(pieces), [(i, first[w]) for i, w in enumerate(worm)] + extra)


def by_truth(pieces, multi, image, joiner):
    own = owners(pieces, truth["ins"])
    return np.unique(own, return_inverse=True)[1].reshape(-1)


def one_joining(fn):
    """A join_readings that gives ``fn``'s joining at every joining probability."""
    return lambda pieces, multi, image, joiner, thresholds: np.stack([fn(pieces, multi, image, joiner)] * len(thresholds))


JOINS = {"model joiner": join_readings, "truth at arm pairs": one_joining(at_pairs),
         "truth at arm pairs + touching": one_joining(lambda *a: at_pairs(*a, touch=True)),
         "grouped by true worm": one_joining(by_truth)}
n = int(sys.argv[1])
for i, style in enumerate(("brightfield", "fluorescence")):
    scenes = validation_scenes(n, style, VAL_SEED0 + 700 + 1000 * i)
    outs = forward_all(model, [s.image for s in scenes])
    gts = [s.instances for s in scenes]
    for name, fn in JOINS.items():
        dec.join_readings = fn
        for cut in (False, True):
            cfg = base if cut else replace(base, min_score=0.0, rescorer=None, pool=False)
            got = []
            for s, o in zip(scenes, outs):
                truth["ins"] = s.instances
                got.append(decode_outputs(o, cfg))
            e = evaluate([g.instances for g in got], [g.scores for g in got], gts)
            print(f"{style:12s} {name:30s} cut={cut!s:5s} avS {e['avS']:.3f} S@0.5 {e['S@0.5']:.3f} "
                  f"n={sum(len(g.instances) for g in got)} truth={sum(len(g) for g in gts)}", flush=True)
