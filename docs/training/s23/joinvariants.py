"""Ways of reading the shipped joiner on validation scenes (VAL_SEED0 + 700 + i, seen by no fit): as shipped
(greedy on one arm order), probabilities averaged over both arm orders, over both orders and the 8 turns/flips of
the crop, and each patch's arms paired by the best matching (summed log-odds above the threshold) instead of
greedily. With the shipped rescorer's cut and without. usage: joinvariants.py N"""
import sys
from dataclasses import replace

import numpy as np
import torch

import napari_semiconv.decode as dec
from napari_semiconv.data.sources import VAL_SEED0, validation_scenes
from napari_semiconv.decode import model_decode_config
from napari_semiconv.joining import SWAPPED, candidate_pairs, join_in_order
from napari_semiconv.metrics import evaluate
from napari_semiconv.model import load_model
from napari_semiconv.models import DEFAULT_MODEL
from napari_semiconv.segment import decode_outputs
from napari_semiconv.threshold_search import forward_all

torch.set_num_threads(2)
model = load_model(DEFAULT_MODEL)
base = model_decode_config(model)


def views(crops, feats, turns):
    """(crops, features) seen from both arm orders and, with turns, the 8 turns/flips of the crop."""
    out = []
    for c, f in ((crops, feats), (crops[:, [0, 2, 1, 3, 4]], feats[:, list(SWAPPED)])):
        for k in range(4 if turns else 1):
            r = torch.rot90(c, k, (2, 3))
            out += [(r, f)] + ([(r.flip(3), f)] if turns else [])
    return out


@torch.no_grad()
def probs(pairs, joiner, mode):
    crops = torch.stack([p[4] for p in pairs])
    feats = torch.from_numpy(np.stack([p[3] for p in pairs]))
    if mode == "one":
        return torch.sigmoid(joiner.net(crops, feats)).numpy()
    vs = views(crops, feats, mode == "turns")
    return torch.stack([torch.sigmoid(joiner.net(c, f)) for c, f in vs]).mean(0).numpy()


def best_matching(arms, weight):
    """The set of pairs (i, j) of arms 0..n-1 with the largest summed weight (weight: dict (i, j) -> float), each
    arm at most once; DP over bitmasks (n <= 14)."""
    n = len(arms)
    memo = {}

    def f(mask):
        if mask == 0:
            return 0.0, ()
        if mask in memo:
            return memo[mask]
        i = (mask & -mask).bit_length() - 1
        best = f(mask & ~(1 << i))
        for j in range(i + 1, n):
            if mask >> j & 1 and (i, j) in weight and weight[(i, j)] > 0:
                v, chosen = f(mask & ~(1 << i) & ~(1 << j))
                if v + weight[(i, j)] > best[0]:
                    best = (v + weight[(i, j)], chosen + ((i, j),))
        memo[mask] = best
        return best
    return f((1 << n) - 1)[1]


def make_join(mode, matching):
    def join(pieces, multi, image, joiner):
        _, patches, pairs = candidate_pairs(pieces, multi, image)
        if not pairs:
            return join_in_order(len(pieces), patches, pairs, [])
        p = probs(pairs, joiner, mode)
        order = np.argsort(-p)
        order = order[p[order] >= joiner.threshold]
        if matching:
            logit = np.log(p.clip(1e-6, 1 - 1e-6) / (1 - p.clip(1e-6, 1 - 1e-6)))
            margin = logit - np.log(joiner.threshold / (1 - joiner.threshold))
            keep = set()
            for k, patch in enumerate(patches):
                idx = [m for m, q in enumerate(pairs) if q[0] == k]
                if not idx or len(patch.arms) > 14:
                    keep |= set(idx)
                    continue
                weight = {(pairs[m][1], pairs[m][2]): margin[m] for m in idx}
                chosen = set(best_matching(patch.arms, weight))
                keep |= {m for m in idx if (pairs[m][1], pairs[m][2]) in chosen}
            order = [m for m in order if m in keep]
        return join_in_order(len(pieces), patches, pairs, order)
    return join


VARIANTS = {"as shipped": ("one", False), "both orders": ("swap", False), "orders + turns": ("turns", False),
            "as shipped, matching": ("one", True), "orders + turns, matching": ("turns", True)}
n = int(sys.argv[1])
for i, style in enumerate(("brightfield", "fluorescence")):
    scenes = validation_scenes(n, style, VAL_SEED0 + 700 + 1000 * i)
    outs = forward_all(model, [s.image for s in scenes])
    gts = [s.instances for s in scenes]
    for name, (mode, matching) in VARIANTS.items():
        dec.join = make_join(mode, matching)
        for cut in (False, True):
            cfg = base if cut else replace(base, min_score=0.0, rescorer=None)
            got = [decode_outputs(o, cfg) for o in outs]
            e = evaluate([g.instances for g in got], [g.scores for g in got], gts)
            print(f"{style:12s} {name:26s} cut={cut!s:5s} avS {e['avS']:.3f} S@0.5 {e['S@0.5']:.3f} "
                  f"n={sum(len(g.instances) for g in got)} truth={sum(len(g) for g in gts)}", flush=True)
