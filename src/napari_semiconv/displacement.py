"""The displacement field Phi^g: where each pixel votes for its worm.

Psi = Phi + u is only defined up to one constant translation: eq. 5, the kernel and the margin see
differences of Psi only, so a trained net puts every worm's vote point at its centre plus an
arbitrary common shift (hundreds of pixels for the shipped model). To draw arrows that point at
the worms, that shift is estimated per image and removed; clustering is unaffected by it.
"""

import numpy as np


def vote_offset(displacement: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The common shift ``(2,)`` float32 (dy, dx) px of the votes from the worms' centroids.

    displacement : (2, H, W) float32 Phi^g in pixels (dy, dx); labels : (H, W) int worms, 0 =
    background. The mean of u over a worm is its centroid, so a worm's mean displacement is its
    vote point minus its centroid; the median over worms is the shift. Zeros when there is no worm.
    """
    ids = labels.ravel()
    fg = ids > 0
    if not fg.any():
        return np.zeros(2, np.float32)
    counts = np.bincount(ids[fg])
    present = counts > 0
    means = np.stack([np.bincount(ids[fg], weights=d.ravel()[fg])[present] / counts[present]
                      for d in displacement], 1)  # (worms, 2)
    return np.median(means, axis=0).astype(np.float32)
