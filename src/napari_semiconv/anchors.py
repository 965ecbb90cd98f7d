"""Anchors: one fixed point on each worm's body that its pixels' Psi are trained to vote for.

A worm's centroid may lie off its body (a U-shaped worm), so the anchor is its *medoid*: the worm
pixel with the least summed distance to the others (approximated on a sample of its pixels). The
synthetic generator gives the exact midpoint of each centre line instead (``Scene.anchors``).
Anchors are computed on the whole image, before cropping, so a worm cut by a crop keeps its true
anchor.
"""

import numpy as np


def medoid_anchors(instances: np.ndarray, max_points: int = 256, seed: int = 0) -> np.ndarray:
    """``(N, 2)`` float32 (row, col) px: an approximate medoid of each mask of ``instances (N, H, W)`` bool.

    The medoid is chosen among up to ``max_points`` pixels of the mask (a fixed-seed sample), each
    scored by its summed distance to the same sample, so it is always a pixel of the worm. Empty
    masks give NaN.
    """
    rng = np.random.default_rng(seed)
    out = np.full((len(instances), 2), np.nan, np.float32)
    for i, mask in enumerate(instances):  # loop over worms; each is vectorised over its pixels
        pts = np.argwhere(mask)
        if len(pts) == 0:
            continue
        if len(pts) > max_points:
            pts = pts[rng.choice(len(pts), max_points, replace=False)]
        diff = pts[:, None, :].astype(np.float32) - pts[None, :, :]
        out[i] = pts[np.sqrt((diff * diff).sum(-1)).sum(1).argmin()]
    return out
