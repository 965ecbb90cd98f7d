"""Training the heads alone on cached backbone features: the fast part of fine-tuning on a CPU.

A whole-network step on a CPU is slow (most of it is the backbone), so a minute of fine-tuning buys a
hundred steps on small crops. Here the backbone runs once per annotated image (as the network sees it,
at the model's input scale), its features are kept, and only the heads train on them, on crops of the
cached features with the targets of the whole image: many more steps, each seeing a worm whole.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from .flow import model_flow_target
from .train import TrainConfig, output_losses


@dataclass
class Cached:
    """One annotated image as the heads see it."""

    feats: torch.Tensor  # (1, c, h', w') the backbone's features (no gradient)
    full: torch.Tensor | None  # (1, 1, H / s, W / s) the image at the full-resolution head's size (None: eq5)
    worms: torch.Tensor  # (N, H, W) bool, at the image's own resolution
    valid: torch.Tensor  # (H, W) bool, where the annotation counts
    anchors: torch.Tensor  # (N, 2) float32 (row, col) px
    flow: torch.Tensor | None  # (2, H, W) the target flow of a flow model, made on the whole image


@torch.no_grad()
def cache_features(model, samples) -> list[Cached]:
    """Run ``model``'s backbone once on each of ``samples``: (image (H, W) float32 normalized, worms (N, H, W)
    bool, valid (H, W) bool or None, anchors (N, 2)) as a data source gives them."""
    device = next(model.parameters()).device
    out = []
    for image, worms, valid, anchors in samples:  # loop over the (few) annotated images
        h, w = image.shape
        feats, full = model.features(torch.from_numpy(np.ascontiguousarray(image, np.float32))[None, None].to(device))
        worms = np.asarray(worms, bool)
        flow = (torch.from_numpy(model_flow_target(model.config, worms, anchors)) if model.config.target == "flow"
                else None)
        out.append(Cached(feats, full, torch.from_numpy(worms), torch.ones((h, w), dtype=torch.bool) if valid is None
                          else torch.from_numpy(np.asarray(valid, bool)), torch.as_tensor(anchors, dtype=torch.float32),
                          flow))
    return out


def head_losses(model, cached: list[Cached], config: TrainConfig, weights: list[float]) -> Callable:
    """``step_losses(rng)`` for :func:`~napari_semiconv.train.train_iter`: each step draws ``config.batch`` cached
    images (with probabilities ``weights``), a random window of about ``config.crop`` px of each holding a
    worm, and returns the loss terms of the heads on it."""
    d = model.config.downsample  # full-resolution head px per feature cell
    f = d * model.config.input_scale  # image px per feature cell
    p = np.asarray(weights, float) / np.sum(weights)

    def step_losses(rng):
        terms = []
        for _ in range(config.batch):  # windows differ in size at the plane's edges: one at a time
            item = cached[int(rng.choice(len(cached), p=p))]
            (r0, r1), (c0, c1) = _window(item, rng, max(2, round(config.crop / f)), f)
            rows, cols = slice(round(r0 * f), min(round(r1 * f), item.worms.shape[1])), \
                slice(round(c0 * f), min(round(c1 * f), item.worms.shape[2]))
            full = None if item.full is None else item.full[..., r0 * d : r1 * d, c0 * d : c1 * d]
            size = (rows.stop - rows.start, cols.stop - cols.start)
            out = model.heads(item.feats[..., r0:r1, c0:c1], full, size)  # Psi in the window's frame
            keep = item.worms[:, rows, cols].flatten(1).any(1)
            anchors = item.anchors[keep] - torch.tensor([rows.start, cols.start], dtype=torch.float32)
            terms += output_losses(model, out, [item.worms[keep][:, rows, cols]], [item.valid[rows, cols]], [anchors],
                                   config, None if item.flow is None else [item.flow[:, rows, cols]])
        return terms

    return step_losses


def _window(item: Cached, rng, cells: int, f: float) -> tuple[tuple[int, int], tuple[int, int]]:
    """A random ``cells`` x ``cells`` window of the feature grid (clipped to it) that holds a worm's anchor
    where there is one: ((r0, r1), (c0, c1)) in feature cells."""
    hc, wc = item.feats.shape[-2:]
    a = item.anchors.numpy() / f
    inside = np.flatnonzero((a[:, 0] >= 0) & (a[:, 0] < hc) & (a[:, 1] >= 0) & (a[:, 1] < wc)) if len(a) else []
    centre = a[rng.choice(inside)] + rng.uniform(-0.4, 0.4, 2) * cells if len(inside) else \
        rng.uniform(0, 1, 2) * (hc, wc)
    r0 = int(np.clip(centre[0] - cells / 2, 0, max(hc - cells, 0)))
    c0 = int(np.clip(centre[1] - cells / 2, 0, max(wc - cells, 0)))
    return (r0, min(r0 + cells, hc)), (c0, min(c0 + cells, wc))
