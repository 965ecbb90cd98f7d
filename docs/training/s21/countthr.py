"""Headroom of a lower P(2+) threshold for the count head: pieces joined by the truth at the same arm pairs (oracle
joiner), no score cut, on validation scenes (VAL_SEED0 + 700 + i). usage: countthr.py N thr..."""
import sys
from dataclasses import replace

import torch

import napari_semiconv.decode as dec
import napari_semiconv.segment as seg
from napari_semiconv.data.sources import VAL_SEED0, validation_scenes
from napari_semiconv.decode import model_decode_config
from napari_semiconv.joining import candidate_pairs, join_in_order
from napari_semiconv.metrics import evaluate
from napari_semiconv.model import load_model
from napari_semiconv.models import DEFAULT_MODEL
from napari_semiconv.normalize import normalize
from napari_semiconv.segment import SegmentConfig, decode_outputs, predict_iter

sys.path.insert(0, "benchmarks")
from fit_joiner import owners

torch.set_num_threads(2)
model = load_model(DEFAULT_MODEL)
base = model_decode_config(model)
n = int(sys.argv[1])
truth = {}


def oracle(pieces, multi, image, joiner):
    """The pieces joined at the arm pairs whose pieces the truth says are one worm, in the candidates' order."""
    _, patches, pairs = candidate_pairs(pieces, multi, image)
    own = owners(pieces, truth["ins"])
    same = [m for m, (k, a, b, _, _) in enumerate(pairs)
            if own[patches[k].arms[a].piece] == own[patches[k].arms[b].piece]]
    return join_in_order(len(pieces), patches, pairs, same)


def thresholded(t):
    def count(logits):
        p = torch.softmax(logits, 0)
        return torch.where(p[2] > t, 2.0, torch.where(p[1] > p[0], 1.0, 0.0))
    return count


argmax = seg._count
for style in ("brightfield", "fluorescence"):
    scenes = validation_scenes(n, style, VAL_SEED0 + 700 + 1000 * (style == "fluorescence"))
    for t in ["argmax"] + [float(x) for x in sys.argv[2:]]:
        seg._count = argmax if t == "argmax" else thresholded(t)
        rows = {"model joiner": ([], []), "oracle": ([], [])}
        for s in scenes:
            out = list(predict_iter(model, normalize(s.image), SegmentConfig()))[-1]
            truth["ins"] = s.instances
            d = decode_outputs(out, replace(base, min_score=0.0, rescorer=None))
            rows["model joiner"][0].append(d.instances); rows["model joiner"][1].append(d.scores)
            dec.join = oracle
            d = decode_outputs(out, replace(base, min_score=0.0, rescorer=None))
            dec.join = __import__("napari_semiconv.joining", fromlist=["join"]).join
            rows["oracle"][0].append(d.instances); rows["oracle"][1].append(d.scores)
        gts = [s.instances for s in scenes]
        print(style, t, {k: round(evaluate(p, sc, gts)["avS"], 3) for k, (p, sc) in rows.items()}, flush=True)
