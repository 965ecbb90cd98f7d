"""Our data in torchvision's detection format: images as ``(1, H, W)`` tensors, worms as boxes + masks.

Ground truth comes from the ``(N, H, W)`` instance stack, so crossing worms keep their whole masks
(one target per worm, overlaps included), as Mask R-CNN predicts them.
"""

import numpy as np
import torch

from ..data.sources import TRAIN_SEEDS
from ..data.synthetic import FIELD, SceneConfig, make_scene
from ..normalize import normalize


def instance_target(instances: np.ndarray) -> dict[str, torch.Tensor]:
    """``(N, H, W)`` bool instance stack -> torchvision target of its ``M`` non-empty masks (M <= N).

    Returns ``boxes`` (M, 4) float32 x0, y0, x1, y1 in px (x1, y1 one past the last pixel), ``labels``
    (M,) int64 all 1 (worm) and ``masks`` (M, H, W) uint8.
    """
    stack = np.asarray(instances, bool)
    stack = stack[stack.any(axis=(1, 2))]
    h, w = stack.shape[1:]
    rows, cols = stack.any(2), stack.any(1)  # (M, H), (M, W)
    boxes = np.stack([cols.argmax(1), rows.argmax(1), w - cols[:, ::-1].argmax(1), h - rows[:, ::-1].argmax(1)], 1)
    return {"boxes": torch.from_numpy(boxes.astype(np.float32)).reshape(-1, 4),
            "labels": torch.ones(len(stack), dtype=torch.int64),
            "masks": torch.from_numpy(stack.astype(np.uint8))}


def model_input(image: np.ndarray, binary: bool = False) -> torch.Tensor:
    """``(H, W)`` image of any dtype -> ``(1, H, W)`` float32 tensor, normalized as our model's input
    (percentiles 1..99.8 to 0..1; ``binary``: a foreground mask mapped to {0, 1})."""
    return torch.from_numpy(normalize(image, binary=binary))[None]


def training_batch(rng: np.random.Generator, batch: int, size: int, config: SceneConfig,
                   binary: bool = False) -> tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]:
    """``batch`` random ``size`` x ``size`` windows of synthetic training scenes (seeds below TRAIN_SEEDS).

    Returns the images (``(1, size, size)`` float32; with ``binary`` the worms' foreground, not the
    rendered image) and their targets (:func:`instance_target`). Windows may reach 40 px past the field.
    """
    images, targets = [], []
    for _ in range(batch):
        window = (int(rng.integers(-40, max(FIELD[0] - size + 40, -39))),
                  int(rng.integers(-40, max(FIELD[1] - size + 40, -39))), size, size)
        scene = make_scene(int(rng.integers(TRAIN_SEEDS)), config, window=window)
        raw = scene.instances.any(0).astype(np.uint8) if binary else scene.image
        images.append(model_input(raw, binary))
        targets.append(instance_target(scene.instances))
    return images, targets
