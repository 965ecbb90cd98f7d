"""How much of the shipped model's loss is the rescorer's choice among the pool's candidates? On validation fields at
the generator's defaults (VAL_SEED0 + 24000 + i, as anatomy.py), the candidates (every distinct worm of the joinings at
probabilities 0.1 ... 0.9 and the pieces alone, DecodeConfig.candidates) are chosen as the decoder does (best score
first, none sharing a pixel counted 1 with one kept before), scored three ways: by the shipped rescorer with its cut
(the shipped decoding), and by an oracle: each candidate's true quality (the fraction of the IoU thresholds 0.5 ... 0.9
its best IoU with a true worm passes, what the rescorer is fitted to), candidates of quality 0 dropped; and mixed: the
rescorer's order with the oracle's cut (quality 0 dropped), and the oracle's order with the rescorer's cut.
usage: python docs/training/s31/oracle_choice.py SCENES"""
import sys
from dataclasses import replace

import numpy as np
import torch

from napari_semiconv.data.sources import VAL_SEED0
from napari_semiconv.data.synthetic import SceneConfig, make_scene
from napari_semiconv.decode import model_decode_config
from napari_semiconv.metrics import S_THRESHOLDS, evaluate, iou_matrix
from napari_semiconv.model import load_model
from napari_semiconv.models import DEFAULT_MODEL
from napari_semiconv.normalize import normalize
from napari_semiconv.segment import SegmentConfig, decode_outputs, predict_iter

torch.set_num_threads(2)
n = int(sys.argv[1])
model = load_model(DEFAULT_MODEL)
config = model_decode_config(model)
pool = replace(config, candidates=True, min_score=0.0)


def choose(stack: np.ndarray, scores: np.ndarray, multi: np.ndarray) -> np.ndarray:
    """``(N,) bool`` kept candidates of an ``(N, H, W)`` stack, best ``scores`` first, none sharing a pixel outside
    ``multi (H, W)`` (counted 2+) with one kept before (as decode._choose)."""
    own = stack.reshape(len(stack), -1) & ~multi.reshape(1, -1)
    taken = np.zeros(own.shape[1], bool)
    keep = np.zeros(len(stack), bool)
    for i in np.argsort(-scores, kind="stable"):  # a loop over candidates
        if scores[i] > 0 and not (own[i] & taken).any():
            keep[i] = True
            taken |= own[i]
    return keep


for style in ("brightfield", "fluorescence"):
    runs = {name: ([], []) for name in ("shipped (rescorer, cut 0.3)", "oracle choice", "rescorer order, oracle cut",
                                         "oracle order, rescorer cut")}
    truths, reachable, total = [], 0, 0
    for i in range(n):
        s = make_scene(VAL_SEED0 + 24000 + i, SceneConfig(style=style))
        out = next(o for o in predict_iter(model, normalize(s.image), SegmentConfig()) if isinstance(o, dict))
        gt = s.instances.astype(bool)
        truths.append(gt)
        shipped = decode_outputs(out, config)
        runs["shipped (rescorer, cut 0.3)"][0].append(shipped.instances.astype(bool))
        runs["shipped (rescorer, cut 0.3)"][1].append(shipped.scores)
        cands = decode_outputs(out, pool)
        stack = cands.instances.astype(bool)
        iou = iou_matrix(stack, gt)  # (C, G)
        quality = (iou.max(1, initial=0)[:, None] > np.asarray(S_THRESHOLDS)[None]).mean(1) if len(stack) else np.zeros(0)
        multi = out["count"].numpy() >= 2
        rescored = cands.scores
        for name, order, cut in (("oracle choice", quality, quality > 0),
                                 ("rescorer order, oracle cut", rescored, quality > 0),
                                 ("oracle order, rescorer cut", quality, rescored >= config.min_score)):
            keep = choose(stack, np.where(cut, order + 1e-3, 0.0), multi)  # + 1e-3: a kept candidate scores > 0
            runs[name][0].append(stack[keep])
            runs[name][1].append(order[keep])
        reachable += int((iou.max(0, initial=0) > 0.5).sum()) if len(stack) else 0
        total += len(gt)
    for name, (preds, scores) in runs.items():
        e = evaluate(preds, scores, truths)
        print(f"{style} {name}: avS {e['avS']:.3f} S@0.5 {e['S@0.5']:.3f} AP {e['AP']:.3f}", flush=True)
    print(f"{style}: {reachable} of {total} true worms have a candidate at IoU > 0.5", flush=True)
