"""Looking inside the embedding of a segmented plane: kernel affinities, the embedding space.

All functions read a :class:`~napari_semiconv.segment.Result` (no model, no Qt).
"""

import numpy as np
import torch

from .losses import kernel
from .segment import Result


def affinity_map(result: Result, row: int, col: int) -> np.ndarray:
    """K_sigma(u, .) = exp(-||Psi_u - Psi_v|| / sigma) over the plane, ``(H, W)`` float32 in [0, 1].

    sigma is the bandwidth at u (the clicked pixel) for models that predict one per pixel.
    """
    psi = torch.from_numpy(result.embedding)
    sigma = result.sigma if result.sigma_map is None else float(result.sigma_map[row, col])
    dist = ((psi - psi[:, row, col][:, None, None]) ** 2).sum(0).sqrt()  # (torch's norm over dim 0 is ~100x slower on CPU)
    return kernel(dist, sigma).numpy().astype(np.float32)


def seeded_region(result: Result, row: int, col: int, threshold: float = 0.5,
                  fg_threshold: float = 0.5) -> np.ndarray:
    """``(H, W)`` bool: the foreground pixels that a seed at (row, col) would take (K > threshold)."""
    return (affinity_map(result, row, col) > threshold) & (result.foreground > fg_threshold)


def _pca_basis(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``(d,)`` and first ``k`` principal axes ``(k, d)`` of ``(P, d)`` samples."""
    mean = x.mean(0)
    _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
    return mean, vt[:k]


def _pca(x: np.ndarray, k: int) -> np.ndarray:
    """``(P, d)`` -> ``(P, k)`` principal components (deterministic signs)."""
    mean, vt = _pca_basis(x, k)
    vt = vt * np.sign(vt.sum(1, keepdims=True) + 1e-12)
    return (x - mean) @ vt.T


def embedding_points(result: Result, max_points: int = 4000, seed: int = 0):
    """A sample of foreground pixels in embedding space.

    Returns dict with ``rc`` (P, 2) int pixel row/col, ``spatial`` (P, 2) Psi's spatial dims in
    pixels (x, y), ``appearance`` (P, 2) PCA of the appearance dims, ``label`` (P,) worm id (0 =
    none).
    """
    fg = np.argwhere(result.foreground > 0.5)
    if len(fg) > max_points:
        fg = fg[np.random.default_rng(seed).choice(len(fg), max_points, replace=False)]
    psi = result.embedding[:, fg[:, 0], fg[:, 1]].T  # (P, d)
    app = psi[:, 2:]
    appearance = _pca(app, 2) if app.shape[1] >= 2 else np.zeros((len(psi), 2))
    return {"rc": fg, "spatial": psi[:, :2] * result.coord_scale, "appearance": appearance,
            "label": result.labels[fg[:, 0], fg[:, 1]].astype(np.int64)}


def embedding_rgb(result: Result) -> np.ndarray:
    """``(H, W, 3)`` float32 in [0, 1]: Psi projected on its 3 principal components (foreground
    pixels fit the projection), background dimmed."""
    d, h, w = result.embedding.shape
    flat = result.embedding.reshape(d, -1).T
    fg = result.foreground.reshape(-1) > 0.5
    ref = flat[fg] if fg.sum() > 3 else flat
    mean, vt = _pca_basis(ref, 3)
    proj = (flat - mean) @ vt.T
    proj = np.pad(proj, ((0, 0), (0, 3 - proj.shape[1])))  # a 2-D embedding (flow models): blue stays 0
    lo, hi = np.percentile(proj[fg] if fg.any() else proj, [1, 99], axis=0)
    rgb = np.clip((proj - lo) / np.maximum(hi - lo, 1e-9), 0, 1)
    rgb *= (0.25 + 0.75 * fg)[:, None]
    return rgb.reshape(h, w, 3).astype(np.float32)
