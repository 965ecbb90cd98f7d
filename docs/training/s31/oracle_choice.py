"""How much of the shipped model's loss is the rescorer's choice among the pool's candidates? On validation fields at
the generator's defaults (VAL_SEED0 + 24000 + i, as anatomy.py), the candidates (every distinct worm of the joinings at
probabilities 0.1 ... 0.9 and the pieces alone, DecodeConfig.candidates) are chosen as the decoder does (best score
first, none sharing a pixel counted 1 with one kept before), scored three ways: by the shipped rescorer with its cut
(the shipped decoding), and by an oracle: each candidate's true quality (the fraction of the IoU thresholds 0.5 ... 0.9
its best IoU with a true worm passes, what the rescorer is fitted to), candidates of quality 0 dropped; and mixed: the
rescorer's order with the oracle's cut (quality 0 dropped), and the oracle's order with the rescorer's cut. Then why the
shipped decoding misses worms that have a good candidate (IoU > 0.5): is that candidate's score under the cut, or is it
blocked by a chosen one sharing its pieces; and the share of true (IoU > 0.5) and false candidates at or above the cut.
MODEL defaults to the shipped model; session 31 ran it on the model shipped before its rescorer refit
(`git show 5ccfcef:src/napari_semiconv/models/default.pt > checkpoints/s31_before.pt`).
usage: python docs/training/s31/oracle_choice.py SCENES [MODEL]"""
import sys
from dataclasses import replace

import numpy as np
import torch

from napari_semiconv.data.sources import VAL_SEED0
from napari_semiconv.data.synthetic import SceneConfig, make_scene
from napari_semiconv.decode import _choose, model_decode_config
from napari_semiconv.metrics import S_THRESHOLDS, evaluate, iou_matrix, matches
from napari_semiconv.model import load_model
from napari_semiconv.models import DEFAULT_MODEL
from napari_semiconv.normalize import normalize
from napari_semiconv.segment import SegmentConfig, decode_outputs, predict_iter

torch.set_num_threads(2)
n = int(sys.argv[1])
model = load_model(sys.argv[2] if len(sys.argv) > 2 else DEFAULT_MODEL)
config = model_decode_config(model)
pool = replace(config, candidates=True, min_score=0.0)


SHIPPED = f"shipped (rescorer, cut {config.min_score:g})"


def choose(stack: np.ndarray, scores: np.ndarray, cut: np.ndarray, multi: np.ndarray) -> np.ndarray:
    """``(N,) bool`` kept candidates of an ``(N, H, W)`` stack: those passing ``cut (N,) bool``, chosen by the decoder's
    :func:`decode._choose` (best ``scores`` first, none sharing a pixel outside ``multi (H, W)``, counted 2+, with one
    kept before)."""
    keep = np.zeros(len(stack), bool)
    keep[cut] = _choose(torch.from_numpy(stack[cut].reshape(int(cut.sum()), -1)), torch.from_numpy(scores[cut]),
                        torch.from_numpy(multi.reshape(-1))).numpy()
    return keep


for style in ("brightfield", "fluorescence"):
    runs = {name: ([], []) for name in (SHIPPED, "oracle choice", "rescorer order, oracle cut",
                                         "oracle order, rescorer cut")}
    truths, reachable, total = [], 0, 0
    misses = {"missed with a good candidate": 0, "its best candidate under the cut": 0, "blocked by a chosen one": 0}
    passing = {"true": [], "false": []}  # per candidate: scored at or above the cut
    for i in range(n):
        s = make_scene(VAL_SEED0 + 24000 + i, SceneConfig(style=style))
        out = next(o for o in predict_iter(model, normalize(s.image), SegmentConfig()) if isinstance(o, dict))
        gt = s.instances.astype(bool)
        truths.append(gt)
        shipped = decode_outputs(out, config)
        runs[SHIPPED][0].append(shipped.instances.astype(bool))
        runs[SHIPPED][1].append(shipped.scores)
        cands = decode_outputs(out, pool)
        stack = cands.instances.astype(bool)
        iou = iou_matrix(stack, gt)  # (C, G)
        quality = (iou.max(1, initial=0)[:, None] > np.asarray(S_THRESHOLDS)[None]).mean(1) if len(stack) else np.zeros(0)
        multi = out["count"].numpy() >= 2
        rescored = cands.scores
        for name, order, cut in (("oracle choice", quality, quality > 0),
                                 ("rescorer order, oracle cut", rescored, quality > 0),
                                 ("oracle order, rescorer cut", quality, rescored >= config.min_score)):
            keep = choose(stack, order, cut, multi)
            runs[name][0].append(stack[keep])
            runs[name][1].append(order[keep])
        reachable += int((iou.max(0, initial=0) > 0.5).sum()) if len(stack) else 0
        total += len(gt)
        good = iou.max(1, initial=0) > 0.5 if len(stack) else np.zeros(0, bool)
        passing["true"] += list(rescored[good] >= config.min_score)
        passing["false"] += list(rescored[~good] >= config.min_score)
        found = matches(shipped.instances.astype(bool), gt) >= 0
        for g in np.flatnonzero(~found & (iou.max(0, initial=0) > 0.5) if len(stack) else []):
            misses["missed with a good candidate"] += 1
            below = rescored[iou[:, g].argmax()] < config.min_score
            misses["its best candidate under the cut" if below else "blocked by a chosen one"] += 1
    for name, (preds, scores) in runs.items():
        e = evaluate(preds, scores, truths)
        print(f"{style} {name}: avS {e['avS']:.3f} S@0.5 {e['S@0.5']:.3f} AP {e['AP']:.3f}", flush=True)
    print(f"{style}: {reachable} of {total} true worms have a candidate at IoU > 0.5; "
          + ", ".join(f"{k} {v}" for k, v in misses.items()) + "; candidates scored at or above the cut: "
          + ", ".join(f"{k} {np.mean(v):.2f} of {len(v)}" for k, v in passing.items()), flush=True)
