"""Instance rescoring: a small learned model that tells a whole worm from a fragment or a merger.

The decoder's own score (seed x foreground x vote concentration) cannot see the *shape* of what it
found: a piece of a worm cut off at a crossing gathers its votes as tightly as a whole worm. The
features below describe each decoded instance (its votes, its size against the image's other instances,
how much of it lies on crossings, how much of its rim touches other foreground, whether it touches the
image's border, its width and length) and a logistic model fitted on decoded *training* scenes
(benchmarks/fit_rescorer.py) turns them into a score in [0, 1]: the expected fraction of the IoU thresholds
0.5 ... 0.9 at which the instance matches a true worm (avS's thresholds; 0 for a fragment or a merger).
The model's weights travel in the model file's metadata (``rescorer``), so a model without them decodes
as before.
"""

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

FEATURES = ("score", "seed", "foreground", "concentration", "log_area", "log_relative_area", "crossing",
            "contact", "border", "width", "log_length", "vote_inside", "vote_on_foreground", "vote_clearance")
CLEARANCE_REACH = 24.0  # px: the vote's distance to the nearest crossing counts up to this (sinks lie 12 px clear)


@dataclass(frozen=True)
class Rescorer:
    """A logistic model over :data:`FEATURES`: p = sigmoid(w . (x - mean) / scale + bias)."""

    mean: tuple
    scale: tuple
    weights: tuple
    bias: float

    @classmethod
    def from_metadata(cls, stored: dict | None) -> "Rescorer | None":
        """The rescorer stored in a model file's metadata (None when there is none or it is of another kind)."""
        if not stored or tuple(stored.get("features", ())) != FEATURES:
            return None
        return cls(tuple(map(float, stored["mean"])), tuple(map(float, stored["scale"])),
                   tuple(map(float, stored["weights"])), float(stored["bias"]))

    def to_metadata(self) -> dict:
        return {"features": list(FEATURES), "mean": list(self.mean), "scale": list(self.scale),
                "weights": list(self.weights), "bias": self.bias}

    def __call__(self, features: torch.Tensor) -> torch.Tensor:
        """``(N, F)`` features -> ``(N,)`` probabilities in [0, 1]."""
        mean, scale, w = (torch.tensor(v, dtype=features.dtype, device=features.device)
                          for v in (self.mean, self.scale, self.weights))
        return torch.sigmoid((features - mean) / scale @ w + self.bias)


def instance_features(stack: torch.Tensor, foreground: torch.Tensor, multi: torch.Tensor | None,
                      parts: tuple[torch.Tensor, torch.Tensor, torch.Tensor], votes: torch.Tensor | None = None
                      ) -> torch.Tensor:
    """``(N, F)`` float32: the :data:`FEATURES` of each decoded instance.

    stack : (N, H, W) bool instances; foreground : (H, W) bool, the pixels the decoder clustered;
    multi : (H, W) bool, pixels counted 2+ (None: unknown, the crossing feature is 0);
    parts : the decoder's score components, each ``(N,)``: seed score, mean foreground probability,
    vote concentration; votes : (N, 2) float (row, col) px, where each instance's votes meet (their median;
    None: unknown, the vote features are 0). Widths and lengths are in pixels, from the area and the outer rim
    (a ribbon of length L and width W has area L W and a rim of about 2 L). A whole worm's votes meet inside
    it, on the foreground and clear of crossings (where its training put them); a piece cut off at a
    crossing stops its votes at the crossing's edge.
    """
    n, h, w = stack.shape
    seed, fg, conc = parts
    multi = torch.zeros((h, w), dtype=torch.bool, device=stack.device) if multi is None else multi
    area, crossing, rim, contact, border = torch.zeros((5, n), device=stack.device)
    rows, cols = stack.any(2), stack.any(1)  # (N, H), (N, W) (a bool sum over the stack is ~4x slower)
    for i in range(n):  # loop over instances, each on its bounding box (1 px wider)
        r = torch.nonzero(rows[i])[:, 0]
        c = torch.nonzero(cols[i])[:, 0]
        r0, r1, c0, c1 = int(r[0]), int(r[-1]) + 1, int(c[0]), int(c[-1]) + 1
        box = (slice(max(r0 - 1, 0), r1 + 1), slice(max(c0 - 1, 0), c1 + 1))
        m = stack[i][box]
        ring = (F.max_pool2d(m[None, None].float(), 3, 1, 1)[0, 0] > 0) & ~m
        area[i], crossing[i] = m.sum(), (m & multi[box]).sum()
        rim[i], contact[i] = ring.sum(), (ring & foreground[box]).sum()
        border[i] = float(r0 == 0 or c0 == 0 or r1 == h or c1 == w)
    area, rim = area.clamp_min(1), rim.clamp_min(1)
    median = area.median() if n else torch.tensor(1.0)
    vote = torch.zeros((3, n), device=stack.device)
    if votes is not None:
        r = votes[:, 0].round().long().clamp(0, h - 1)
        c = votes[:, 1].round().long().clamp(0, w - 1)
        clearance = torch.full((n,), CLEARANCE_REACH, device=stack.device)
        if multi.any():  # each vote's distance (px) to the nearest pixel counted 2+
            clearance = torch.cdist(votes.float(), torch.nonzero(multi).float()).amin(1).clamp_max(CLEARANCE_REACH)
        vote = torch.stack([stack[torch.arange(n), r, c].float(), foreground[r, c].float(), clearance / CLEARANCE_REACH])
    return torch.stack([seed * fg * conc, seed, fg, conc, area.log(), (area / median).log(), crossing / area,
                        contact / rim, border, 2 * area / rim, (rim / 2).log(), *vote], 1).float()


def fit_rescorer(features: np.ndarray, target: np.ndarray, l2: float = 1e-3, steps: int = 500) -> Rescorer:
    """Fit the logistic model on ``features (M, F)`` with ``target (M,)`` in [0, 1] (e.g. the fraction of IoU
    thresholds at which the instance matches a true worm), by full-batch L-BFGS on the cross-entropy with a small
    L2 penalty."""
    x = torch.as_tensor(features, dtype=torch.float64)
    y = torch.as_tensor(target, dtype=torch.float64)
    mean, scale = x.mean(0), x.std(0).clamp_min(1e-6)
    z = (x - mean) / scale
    w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.binary_cross_entropy_with_logits(z @ w + b, y) + l2 * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return Rescorer(tuple(mean.tolist()), tuple(scale.tolist()), tuple(w.detach().tolist()), float(b.detach()))
