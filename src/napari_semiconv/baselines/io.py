"""Baseline model files: config + weights + metadata under their own format header, written atomically.

The header (``napari-semiconv-maskrcnn/1``) differs from our U-Net models' (``napari-semiconv-model/1``),
so a file given as ``--model`` says which kind it is. Files are read with ``weights_only=True``.
"""

import os
from pathlib import Path

import torch
from torchvision.models.detection import MaskRCNN

from ..errors import SemiconvError
from ..model.io import read_payload, write_payload
from .adapter import FORMAT
from .maskrcnn import BaselineConfig, build_baseline


def save_baseline(model: MaskRCNN, path: str | os.PathLike, metadata: dict | None = None,
                  extra: dict | None = None) -> Path:
    """Write ``model`` (built by :func:`~.maskrcnn.build_baseline`) to ``path`` atomically; ``extra`` adds
    top-level entries (a checkpoint's optimizer state and training progress)."""
    return write_payload(model, path, FORMAT, metadata, extra)


def read_baseline_file(path: str | os.PathLike) -> dict:
    """The checked payload of a baseline file (``weights_only=True``); SemiconvError if it is not one."""
    return read_payload(path, FORMAT, "model file", f"is not a Mask R-CNN baseline file (no '{FORMAT}' header)")


def load_baseline(path: str | os.PathLike, device: torch.device | str = "cpu") -> MaskRCNN:
    """The baseline stored at ``path`` on ``device`` in eval mode; ``model.metadata`` is set."""
    payload = read_baseline_file(path)
    try:
        model = build_baseline(BaselineConfig.from_dict(payload["config"]))
        model.load_state_dict(payload["state_dict"])
    except (TypeError, ValueError, RuntimeError, KeyError) as exc:
        raise SemiconvError(f"{path}: weights do not match the stored config ({exc})") from None
    model.metadata = {**payload.get("metadata", {}), "path": str(path)}
    return model.to(device).eval()
