"""One optimisation step of a baseline (the loop, its budget and checkpoints are the caller's)."""

from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class TrainConfig:
    """Optimiser and batch settings, the same for both baselines."""

    lr: float = 2e-4  # AdamW learning rate (from scratch; constant)
    weight_decay: float = 1e-4
    batch: int = 2  # crops per step
    crop: int = 384  # crop side, px
    clip: float = 10.0  # gradient-norm clip (the RPN's early losses spike when trained from scratch)

    def to_dict(self) -> dict:
        return asdict(self)


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW over the trainable parameters of ``model``."""
    return torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.lr,
                             weight_decay=config.weight_decay)


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, images: list[torch.Tensor],
               targets: list[dict[str, torch.Tensor]], clip: float) -> dict[str, float]:
    """One step on a batch (``images``: (1, H, W) float32 tensors, ``targets``: torchvision targets).

    Returns every loss term by name (torchvision's ``loss_*``; the semi-convolutional model adds
    ``loss_embedding`` and ``loss_kernel``) and their sum as ``total``, as floats.
    """
    model.train()
    losses = model(images, targets)
    total = sum(losses.values())
    optimizer.zero_grad(set_to_none=True)
    total.backward()
    nn.utils.clip_grad_norm_(model.parameters(), clip)
    optimizer.step()
    return {**{k: float(v.detach()) for k, v in losses.items()}, "total": float(total.detach())}
