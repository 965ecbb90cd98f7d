"""A baseline on one plane: image in, ``(N, H, W)`` instance stack (overlaps kept) and scores out."""

import numpy as np
import torch
from torchvision.models.detection import MaskRCNN

from .targets import model_input


def predict(model: MaskRCNN, image: np.ndarray, score_threshold: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Detect the worms of ``image`` (``(H, W)``, any dtype; the foreground mask for a ``binary`` model).

    Keeps detections scoring at least ``score_threshold`` (default the model's own,
    ``model.config.score_threshold``). Returns ``masks`` (N, H, W) bool (sigmoid of the mask logits,
    s_hat for the semi-convolutional model, >= ``model.config.mask_threshold``) and ``scores`` (N,)
    float32, highest first.
    """
    config = model.config
    threshold = config.score_threshold if score_threshold is None else score_threshold
    device = next(model.parameters()).device
    model.eval()
    with torch.no_grad():
        out = model([model_input(image, config.input == "binary").to(device)])[0]
    keep = out["scores"] >= threshold
    masks = (out["masks"][keep, 0] >= config.mask_threshold).cpu().numpy()
    return masks.reshape(-1, *np.shape(image)), out["scores"][keep].cpu().numpy().astype(np.float32)
