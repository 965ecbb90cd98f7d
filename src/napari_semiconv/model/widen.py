"""A wider copy of a trained model that computes what it did (Net2Net-style widening), to train on from there.

Each channel of the wider backbone copies one of the model's channels, so a wider model starts where the
trained one stopped instead of from scratch; copies are chosen so that every GroupNorm group of the wider
net holds the channels of one group of the old net (each channel repeated), which keeps the group
statistics, and the weights reading a repeated channel are divided among its copies. A little noise then
lets the copies learn apart (identical copies get identical gradients).
"""

from dataclasses import replace

import numpy as np
import torch

from .backbone import group_count
from .embedding import SemiConvNet


def channel_map(old: int, new: int) -> np.ndarray:
    """``(new,)`` int: the old channel each of ``new`` channels copies, group by group (see the module)."""
    g_old, g_new = group_count(old), group_count(new)
    size_old, size_new = old // g_old, new // g_new
    if new < old or size_new % size_old or g_new % g_old:
        raise ValueError(f"cannot widen {old} channels to {new} group by group")
    j = np.arange(new)
    return (j // size_new) % g_old * size_old + j % size_new % size_old


def _copy(weight: torch.Tensor, rows: np.ndarray | None, cols: np.ndarray | None) -> torch.Tensor:
    """``weight`` with output channels picked by ``rows`` and input channels by ``cols`` (each input's weight
    divided by its number of copies, so a layer reading the copies sums what it read before); None = as is."""
    w = weight if rows is None else weight[torch.from_numpy(rows)]
    if cols is not None and w.ndim > 1:
        copies = np.bincount(cols, minlength=int(cols.max()) + 1)[cols]
        w = w[:, torch.from_numpy(cols)] / torch.from_numpy(copies).to(w.dtype).view(1, -1, *[1] * (w.ndim - 2))
    return w


def widen(model: SemiConvNet, width: int, noise: float = 0.01, seed: int = 0) -> SemiConvNet:
    """A copy of ``model`` with ``width`` channels at the backbone's finest level (``model.config.max_width`` still
    caps the deepest), computing the same outputs up to ``noise`` (Gaussian, that fraction of each weight
    tensor's standard deviation, on the widened tensors only)."""
    old = model.config
    wide = SemiConvNet(replace(old, width=width))
    depth = old.depth
    w_old = model.backbone.widths
    maps = [channel_map(a, b) for a, b in zip(w_old, wide.backbone.widths)]
    image = np.arange(old.in_channels)
    ins = {f"backbone.down.{i}": maps[i - 1] if i else image for i in range(depth + 1)}
    outs = {f"backbone.down.{i}": maps[i] for i in range(depth + 1)}
    for j in range(depth):  # up block j works at level depth - 1 - j: input [upsampled deeper level, skip]
        level = depth - 1 - j
        ins[f"backbone.up.{j}"] = np.concatenate([maps[level + 1], w_old[level + 1] + maps[level]])
        outs[f"backbone.up.{j}"] = maps[level]
    top = maps[0]
    rules = {"phi_head.0": (top, top), "phi_head.2": (None, top),
             **{head: (None, top) for head in ("seed_head", "fg_head", "sigma_head")}}
    if hasattr(model, "count_head"):  # it reads the backbone's features and the full-resolution image head's
        rules["count_head.0"] = (None, np.concatenate([top, w_old[0] + np.arange(model.image_head[0].out_channels)]))
    if old.refine:
        rules |= {f"refine.blocks.{b}.{k}": (None, top) if k == 0 else (top, None)
                  for b in range(old.refine) for k in (0, 3)}
    state, rng = {}, torch.Generator().manual_seed(seed)
    for name, tensor in model.state_dict().items():
        module, _, _ = name.rpartition(".")
        block, _, layer = module.rpartition(".")
        if block in outs:  # a backbone conv (layers 0, 3) or its GroupNorm (1, 4)
            rows = outs[block]
            cols = ins[block] if layer == "0" else rows if layer == "3" else None
        else:
            rows, cols = rules.get(module, (None, None))
        new = _copy(tensor, rows, cols)
        if new.shape != tensor.shape and noise:
            new = new + noise * new.std() * torch.randn(new.shape, generator=rng)
        state[name] = new
    wide.load_state_dict(state)
    wide.metadata = dict(getattr(model, "metadata", {}))
    return wide.train(model.training)


def pair_flows(model: SemiConvNet) -> SemiConvNet:
    """A copy of flow ``model`` with paired flows (``ModelConfig.flow_pair``): its second flow starts as a copy of
    its first, so the copy decodes as ``model`` did until training sets the two apart where worms cross."""
    if model.config.target != "flow" or model.config.flow_pair:
        raise ValueError("pairing needs a flow model with one flow")
    paired = SemiConvNet(replace(model.config, flow_pair=True))
    state = model.state_dict()
    for name in ("phi_head.2.weight", "phi_head.2.bias"):
        state[name] = torch.cat([state[name], state[name]])
    paired.load_state_dict(state)
    paired.metadata = dict(getattr(model, "metadata", {}))
    return paired.train(model.training)


def with_count_refiner(model: SemiConvNet) -> SemiConvNet:
    """A copy of flow ``model`` with a count refiner (``ModelConfig.count_refiner``, :mod:`.count_refiner`), its
    other weights copied and the refiner's last layer zero: the copy computes what ``model`` did until the refiner
    is trained."""
    if model.config.target != "flow" or model.config.count_refiner:
        raise ValueError("a count refiner goes on a flow model without one")
    refined = SemiConvNet(replace(model.config, count_refiner=True))
    missing, unexpected = refined.load_state_dict(model.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("count_refiner.") for k in missing)
    refined.metadata = dict(getattr(model, "metadata", {}))
    return refined.train(model.training)
