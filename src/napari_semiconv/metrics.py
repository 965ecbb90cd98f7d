"""Instance segmentation metrics on (N, H, W) instance stacks (overlaps allowed).

- S(t) = TP / (TP + FP + FN), one-to-one (Hungarian) matching at IoU > t, per image;
  avS = mean of S(t) over t = 0.5, 0.6, 0.7, 0.8, 0.9 (the PatchPerPix / BBBC010 measure).
- COCO-style mask AP over IoU 0.50:0.95 (101-point interpolation), AP50, AP75, with
  predictions pooled over images and ranked by score.
"""

import numpy as np
from scipy.optimize import linear_sum_assignment

S_THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)
AP_THRESHOLDS = tuple(np.round(np.arange(0.5, 0.96, 0.05), 2))


def as_stack(masks: np.ndarray) -> np.ndarray:
    """``(H, W)`` int labels or ``(N, H, W)`` stack -> ``(N, H, W)`` bool stack (empty ones dropped)."""
    masks = np.asarray(masks)
    if masks.ndim == 2:
        ids = np.unique(masks)
        ids = ids[ids != 0]
        return masks[None] == ids[:, None, None]
    stack = masks.astype(bool)
    return stack[stack.any(axis=(1, 2))] if len(stack) else stack


def stack_with_scores(masks: np.ndarray, scores) -> tuple[np.ndarray, np.ndarray]:
    """Drop empty masks *and their scores* together: ``(N, H, W)`` stack (or ``(H, W)`` labels, one
    score per id in increasing id order) and ``(N,)`` scores -> ``(M, H, W)`` bool, ``(M,)`` float64.

    NaN scores rank last (as -inf). Raises ValueError when the counts differ.
    """
    masks = np.asarray(masks)
    scores = np.asarray(scores, np.float64).reshape(-1)
    if masks.ndim == 2:
        n = len(np.setdiff1d(np.unique(masks), [0]))
        stack, keep = as_stack(masks), np.ones(n, bool)
    else:
        n = len(masks)
        keep = masks.reshape(n, -1).any(1) if n else np.zeros(0, bool)
        stack = masks.astype(bool)[keep]
    if len(scores) != n:
        raise ValueError(f"{n} predicted masks but {len(scores)} scores: give one score per mask")
    return stack, np.where(np.isnan(scores), -np.inf, scores)[keep]


def iou_matrix(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """IoU ``(Np, Ng)`` float64 between two ``(N, H, W)`` bool stacks (or label images)."""
    p, g = as_stack(pred), as_stack(gt)
    if len(p) == 0 or len(g) == 0:
        return np.zeros((len(p), len(g)))
    p = p.reshape(len(p), -1).astype(np.float32)
    g = g.reshape(len(g), -1).astype(np.float32)
    inter = p @ g.T
    union = p.sum(1)[:, None] + g.sum(1)[None] - inter
    return (inter / np.maximum(union, 1)).astype(np.float64)


def _one_to_one(iou: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """(pred rows, gt cols) of the one-to-one matches with IoU > threshold (maximum cardinality via Hungarian)."""
    if iou.size == 0:
        return np.zeros(0, int), np.zeros(0, int)
    ok = iou > threshold
    rows, cols = linear_sum_assignment(-(ok + 1e-6 * iou))
    hit = ok[rows, cols]
    return rows[hit], cols[hit]


def matched_tp(iou: np.ndarray, threshold: float) -> int:
    """Number of one-to-one matches with IoU > threshold."""
    return len(_one_to_one(iou, threshold)[0])


def s_score(pred, gt, threshold: float) -> float:
    """S(t) = TP / (TP + FP + FN) for one image; 1.0 when both are empty."""
    return s_of_iou(iou_matrix(pred, gt), threshold)


def s_of_iou(iou: np.ndarray, threshold: float) -> float:
    """:func:`s_score` from the image's ``(Np, Ng)`` IoU matrix (as :func:`iou_matrix` gives it)."""
    tp = matched_tp(iou, threshold)
    denom = iou.shape[0] + iou.shape[1] - tp
    return 1.0 if denom == 0 else tp / denom


def matches(pred, gt, threshold: float = 0.5) -> np.ndarray:
    """``(Ng,)`` int: the predicted instance matched one-to-one to each ground-truth one at IoU > threshold, -1 if none."""
    iou = iou_matrix(pred, gt)
    out = np.full(iou.shape[1], -1)
    rows, cols = _one_to_one(iou, threshold)
    out[cols] = rows
    return out


def separated_pairs(pred, gt, threshold: float = 0.5, gap: int = 2) -> tuple[int, int]:
    """Ground-truth worms that cross or touch (masks overlap, or come within ``gap`` px): (pairs, pairs whose two
    worms are each matched to their own predicted instance at IoU > threshold). pred, gt: stacks or labels."""
    from scipy import ndimage as ndi

    g = as_stack(gt)
    if len(g) < 2:
        return 0, 0
    grown = np.stack([ndi.binary_dilation(m, iterations=gap) for m in g]).reshape(len(g), -1).astype(np.float32)
    near = (grown @ g.reshape(len(g), -1).astype(np.float32).T) > 0  # i grown reaches j
    a, b = np.nonzero(np.triu(near | near.T, 1))
    found = matches(pred, g, threshold)
    return len(a), int(((found[a] >= 0) & (found[b] >= 0)).sum())


def average_precision(preds, scores, gts, threshold: float) -> float:
    """COCO-style AP at one IoU threshold, pooled over images.

    preds : list of (N_i, H, W) stacks (or label images); scores : list of (N_i,) arrays, one per
    mask (empty masks are dropped with their scores); gts : list of stacks. Greedy matching by
    descending score to the best still-unmatched GT with IoU >= threshold.
    """
    records, n_gt = [], 0
    for pred, score, gt in zip(preds, scores, gts):
        pred, score = stack_with_scores(pred, score)
        iou = iou_matrix(pred, gt)
        n_gt += iou.shape[1]
        taken = np.zeros(iou.shape[1], bool)
        for j in np.argsort(-np.asarray(score), kind="stable"):
            cand = np.where(~taken & (iou[j] >= threshold), iou[j], -1) if iou.shape[1] else []
            hit = len(cand) > 0 and cand.max() >= threshold
            if hit:
                taken[int(np.argmax(cand))] = True
            records.append((float(score[j]), hit))
    if n_gt == 0:
        return float("nan")
    if not records:
        return 0.0
    records.sort(key=lambda r: -r[0])
    hits = np.array([r[1] for r in records], float)
    tp = np.cumsum(hits)
    precision = tp / np.arange(1, len(hits) + 1)
    recall = tp / n_gt
    precision = np.maximum.accumulate(precision[::-1])[::-1]  # monotone envelope
    grid = np.linspace(0, 1, 101)
    pos = np.searchsorted(recall, grid, side="left")
    return float(np.mean(np.where(pos < len(precision), precision[np.minimum(pos, len(precision) - 1)], 0)))


def evaluate(preds, scores, gts) -> dict:
    """All metrics over a set of images. Returns a dict of floats (S@t per t, avS, AP, AP50, AP75)."""
    per_t = {t: float(np.mean([s_score(p, g, t) for p, g in zip(preds, gts)])) for t in S_THRESHOLDS}
    out = {f"S@{t:.1f}": v for t, v in per_t.items()}
    out["avS"] = float(np.mean(list(per_t.values())))
    aps = {t: average_precision(preds, scores, gts, t) for t in AP_THRESHOLDS}
    out["AP"] = float(np.mean(list(aps.values())))
    out["AP50"], out["AP75"] = aps[0.5], aps[0.75]
    out["images"] = len(preds)
    return out
