"""Instance rescoring: a small learned model that tells a whole worm from a fragment or a merger.

The decoder's own score (seed x foreground x vote concentration) cannot see the *shape* of what it
found: a piece of a worm cut off at a crossing gathers its votes as tightly as a whole worm. The
features below describe each decoded instance (its votes, its size against the image's other instances,
how much of it lies on crossings, how much of its rim touches other foreground, whether it touches the
image's border, its width and length, its skeleton's ends, branches and ends on a crossing) and a small network (two hidden layers of 16; earlier files hold a
logistic model) fitted on decoded *training* scenes
(benchmarks/fit_rescorer.py) turns them into a score in [0, 1]: the expected fraction of the IoU thresholds
0.5 ... 0.9 at which the instance matches a true worm (avS's thresholds; 0 for a fragment or a merger).
The model's weights travel in the model file's metadata (``rescorer``), so a model without them decodes
as before.
"""

from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage as ndi
from skimage.morphology import skeletonize

FEATURES = ("score", "seed", "foreground", "concentration", "log_area", "log_relative_area", "crossing",
            "contact", "border", "width", "log_length", "vote_inside", "vote_on_foreground", "vote_clearance",
            "skeleton_ends", "skeleton_branches", "ends_on_crossing", "log_relative_skeleton", "agreement")
ON_CROSSING = 3  # px: a skeleton's end this close to the instance's own pixels counted 2+ ends on a crossing
CLEARANCE_REACH = 24.0  # px: the vote's distance to the nearest crossing counts up to this (sinks lie 12 px clear)


@dataclass(frozen=True)
class Rescorer:
    """A small network over :data:`FEATURES`: the features standardised, ``z = (x - mean) / scale``, then each
    layer ``z = z @ weight.T + bias`` in turn with a ReLU between layers, and a sigmoid on the last one's single
    output. A single layer is the logistic model that earlier model files store (as ``weights`` and ``bias``).

    mean, scale : (F,) floats; layers : one ``(weight (out, in), bias (out,))`` pair of nested float tuples per layer;
    features : the names of the F features it reads, in order (a subset of :data:`FEATURES`: a rescorer fitted
    before a feature was added keeps reading its own).
    """

    mean: tuple
    scale: tuple
    layers: tuple
    features: tuple = FEATURES

    @classmethod
    def from_metadata(cls, stored: dict | None) -> "Rescorer | None":
        """The rescorer stored in a model file's metadata (None when there is none or it is of another kind)."""
        names = tuple(stored.get("features", ())) if stored else ()
        if not names or not set(names) <= set(FEATURES):
            return None
        layers = stored["layers"] if "layers" in stored else [[[stored["weights"]], [stored["bias"]]]]
        return cls(tuple(map(float, stored["mean"])), tuple(map(float, stored["scale"])),
                   tuple((tuple(tuple(map(float, row)) for row in w), tuple(map(float, b))) for w, b in layers), names)

    def to_metadata(self) -> dict:
        return {"features": list(self.features), "mean": list(self.mean), "scale": list(self.scale),
                "layers": [[[list(row) for row in w], list(b)] for w, b in self.layers]}

    def __call__(self, features: torch.Tensor) -> torch.Tensor:
        """``(N, len(FEATURES))`` features (:func:`instance_features`) -> ``(N,)`` probabilities in [0, 1]."""
        mean, scale = (torch.tensor(v, dtype=features.dtype, device=features.device) for v in (self.mean, self.scale))
        z = (features[:, [FEATURES.index(f) for f in self.features]] - mean) / scale
        for i, (w, b) in enumerate(self.layers):
            z = z @ torch.tensor(w, dtype=z.dtype, device=z.device).T + torch.tensor(b, dtype=z.dtype, device=z.device)
            z = z if i == len(self.layers) - 1 else z.clamp_min(0)
        return torch.sigmoid(z[:, 0])


def instance_features(stack: torch.Tensor, foreground: torch.Tensor, multi: torch.Tensor | None,
                      parts: tuple[torch.Tensor, torch.Tensor, torch.Tensor], votes: torch.Tensor | None = None,
                      pixel_scale: float = 1.0, agreement: torch.Tensor | None = None) -> torch.Tensor:
    """``(N, F)`` float32: the :data:`FEATURES` of each decoded instance.

    stack : (N, H, W) bool instances; foreground : (H, W) bool, the pixels the decoder clustered;
    multi : (H, W) bool, pixels counted 2+ (None: unknown, the crossing feature is 0);
    parts : the decoder's score components, each ``(N,)``: seed score, mean foreground probability,
    vote concentration; votes : (N, 2) float (row, col) px, where each instance's votes meet (their median;
    None: unknown, the vote features are 0). Widths and lengths are in pixels of the model's training images (image
    px / ``pixel_scale``, the model's input scale), from the area and the outer rim
    (a ribbon of length L and width W has area L W and a rim of about 2 L). A whole worm's votes meet inside
    it, on the foreground and clear of crossings (where its training put them); a piece cut off at a
    crossing stops its votes at the crossing's edge. agreement : (N,) the share of a pool's joinings that hold each
    instance (None: one joining, 1 for every instance): a worm only weak joins make is held by few.
    """
    n, h, w = stack.shape
    seed, fg, conc = parts
    multi = torch.zeros((h, w), dtype=torch.bool, device=stack.device) if multi is None else multi
    area, crossing, rim, contact, border = torch.zeros((5, n), device=stack.device)
    skeleton = np.zeros((n, 4), np.float32)
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
        skeleton[i] = _skeleton(m.cpu().numpy(), (m & multi[box]).cpu().numpy(), round(ON_CROSSING * pixel_scale))
    area, rim, crossing, contact = area / pixel_scale**2, rim / pixel_scale, crossing / pixel_scale**2, contact / pixel_scale
    area, rim = area.clamp_min(1), rim.clamp_min(1)
    median = area.median() if n else torch.tensor(1.0)
    vote = torch.zeros((3, n), device=stack.device)
    if votes is not None:
        r = votes[:, 0].round().long().clamp(0, h - 1)
        c = votes[:, 1].round().long().clamp(0, w - 1)
        clearance = torch.full((n,), CLEARANCE_REACH, device=stack.device)
        if multi.any():  # each vote's distance (px) to the nearest pixel counted 2+
            clearance = (torch.cdist(votes.float(), torch.nonzero(multi).float()).amin(1) / pixel_scale
                         ).clamp_max(CLEARANCE_REACH)
        vote = torch.stack([stack[torch.arange(n), r, c].float(), foreground[r, c].float(), clearance / CLEARANCE_REACH])
    if n:  # the skeleton's length against the image's median
        skeleton[:, 3] = np.log(skeleton[:, 3] / np.median(skeleton[:, 3]))
    return torch.cat([torch.stack([seed * fg * conc, seed, fg, conc, area.log(), (area / median).log(), crossing / area,
                                   contact / rim, border, 2 * area / rim, (rim / 2).log(), *vote], 1).float(),
                      torch.from_numpy(skeleton).to(stack.device),
                      (torch.ones(n, device=stack.device) if agreement is None else agreement.to(stack.device))[:, None]],
                     1)


def _skeleton(mask: np.ndarray, crossing: np.ndarray, reach: int = ON_CROSSING) -> tuple[int, int, int, int]:
    """Of ``mask (h, w) bool`` (one instance, its box 1 px wider) and ``crossing (h, w) bool`` (its pixels counted
    2+): its skeleton's end points, branch points (8-connected groups), ends within ``reach`` px of the crossing
    (a piece cut off at a crossing ends there) and length (px, at least 1). A whole worm has two ends, no branch."""
    eight = np.ones((3, 3), np.uint8)
    sk = skeletonize(mask)
    neighbours = ndi.convolve(sk.astype(np.uint8), eight, mode="constant") - 1
    ends, branches = sk & (neighbours == 1), sk & (neighbours >= 3)
    near = ndi.binary_dilation(crossing, iterations=reach) if crossing.any() else crossing
    return int(ends.sum()), ndi.label(branches, eight)[1], int((ends & near).sum()), max(int(sk.sum()), 1)


def fit_rescorer(features: np.ndarray, target: np.ndarray, hidden: tuple = (16, 16), steps: int = 3000,
                 weight_decay: float = 1e-3, seed: int = 0) -> Rescorer:
    """Fit the rescorer on ``features (M, F)`` with ``target (M,)`` in [0, 1] (e.g. the fraction of IoU thresholds at
    which the instance matches a true worm): ``hidden`` ReLU layers of these widths (``()``: the logistic model),
    full-batch AdamW on the cross-entropy for ``steps`` steps, the learning rate falling from 3e-3 to 0 along a
    cosine."""
    torch.manual_seed(seed)
    x = torch.as_tensor(features, dtype=torch.float32)
    y = torch.as_tensor(target, dtype=torch.float32)
    mean, scale = x.mean(0), x.std(0).clamp_min(1e-6)
    widths = (x.shape[1], *hidden, 1)
    linears = [torch.nn.Linear(i, o) for i, o in pairwise(widths)]
    net = torch.nn.Sequential(*[m for lin in linears for m in (lin, torch.nn.ReLU())][:-1])
    opt = torch.optim.AdamW(net.parameters(), 3e-3, weight_decay=weight_decay)
    z = (x - mean) / scale
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = 1.5e-3 * (1 + np.cos(np.pi * step / steps))
        loss = F.binary_cross_entropy_with_logits(net(z)[:, 0], y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return Rescorer(tuple(mean.tolist()), tuple(scale.tolist()),
                    tuple((tuple(map(tuple, lin.weight.detach().tolist())), tuple(lin.bias.detach().tolist()))
                          for lin in linears))
