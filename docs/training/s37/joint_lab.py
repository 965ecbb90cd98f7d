"""Joining each crossing patch's arms jointly instead of greedily (issue 14; session 34: the joiner's decisions are
the decoder's largest lever). The shipped joining takes candidate arm pairs in order of the joiner's probability,
each arm at most once: at a crossing of two worms it may join a likely pair and leave the other two arms apart,
where another pairing has two likely pairs. Here, per patch, the pairing (each arm at most once) with the largest
sum of logit(p) - logit(t) over its pairs is chosen (t: the joining probability of the reading; patches with more
than MAX_ARMS arms stay greedy), then the chosen pairs are joined across patches in order of probability as before
(never two pieces already one worm). The shipped model, both ways, on the model-choice fields of
benchmarks/bakeoff.py score (VAL_SEED0 + 1000 + i, N per style; the network runs once per field).

    python docs/training/s37/joint_lab.py N

Run (joint_lab.log) with session 33's model as the shipped one (git show f469397:src/napari_semiconv/models/default.pt);
today's shipped model also joins across contacts.
"""

import sys
import time

import numpy as np
import torch

from napari_semiconv import joining
from napari_semiconv.data.sources import VAL_SEED0, validation_scenes
from napari_semiconv.decode import model_decode_config
from napari_semiconv.metrics import evaluate
from napari_semiconv.normalize import normalize
from napari_semiconv.registry import resolve_model
from napari_semiconv.segment import SegmentConfig, decode_outputs, predict_iter

MAX_ARMS = 8
SHIPPED = joining.join_readings


def logit(p):
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def best_pairing(arms: list, gain: dict) -> list:
    """The set of pairs (each arm once) with the largest summed gain; ``gain``: {(a, b): float > 0}."""
    if not arms:
        return []
    first, rest = arms[0], arms[1:]
    best, best_val = best_pairing(rest, gain), None
    best_val = sum(gain[p] for p in best)
    for other in rest:
        key = (first, other) if (first, other) in gain else (other, first)
        if key in gain:
            sub = best_pairing([a for a in rest if a != other], gain)
            val = gain[key] + sum(gain[p] for p in sub)
            if val > best_val:
                best, best_val = [key] + sub, val
    return best


def joint_order(patches, pairs, prob: np.ndarray, t: float) -> np.ndarray:
    """Indices of the pairs chosen per patch jointly, in order of probability."""
    if not np.isfinite(t):
        return np.zeros(0, int)
    chosen = []
    by_patch = {}
    for m, (k, a, b, *_) in enumerate(pairs):
        if prob[m] >= t:
            by_patch.setdefault(k, []).append(m)
    for k, ms in by_patch.items():  # loop over patches
        arms = sorted({a for m in ms for a in pairs[m][1:3]})
        if len(arms) > MAX_ARMS:
            chosen += ms  # greedy there
            continue
        gain = {(pairs[m][1], pairs[m][2]): float(logit(prob[m]) - logit(t)) + 1e-9 for m in ms}
        index = {(pairs[m][1], pairs[m][2]): m for m in ms}
        chosen += [index[p] for p in best_pairing(arms, gain)]
    chosen = np.asarray(chosen, int)
    return chosen[np.argsort(-prob[chosen])]


@torch.no_grad()
def joint_readings(pieces, multi, image, joiner, thresholds):
    _, patches, pairs = joining.candidate_pairs(pieces, multi, image)
    prob = joining.pair_probabilities(joiner, patches, pairs)
    return np.stack([joining.join_in_order(len(pieces), patches, pairs, joint_order(patches, pairs, prob, t))
                     for t in thresholds])


def score(variants, n: int) -> None:
    """Print the shipped model's metrics on the fields with ``decode.join_readings`` replaced by each of ``variants``
    ((name, function) pairs)."""
    import napari_semiconv.decode as dec

    model = resolve_model(None, "cpu")
    config = model_decode_config(model)
    for style in ("brightfield", "fluorescence"):
        scenes = validation_scenes(n, style, VAL_SEED0 + 1000)
        outs = [list(predict_iter(model, normalize(s.image), SegmentConfig()))[-1] for s in scenes]
        for name, fn in variants:
            dec.join_readings = fn
            t0 = time.perf_counter()
            decoded = [decode_outputs(o, config) for o in outs]
            secs = (time.perf_counter() - t0) / n
            m = evaluate([d.instances for d in decoded], [d.scores for d in decoded], [s.instances for s in scenes])
            print(f"{style} | {name} | avS {m['avS']:.3f} | S@0.5 {m['S@0.5']:.3f} | S@0.9 {m['S@0.9']:.3f} | "
                  f"AP {m['AP']:.3f} | decode {secs:.2f} s", flush=True)


if __name__ == "__main__":
    score((("greedy (shipped)", SHIPPED), ("joint per patch", joint_readings)), int(sys.argv[1]))
