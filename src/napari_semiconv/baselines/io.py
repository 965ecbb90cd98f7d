"""Baseline model files: config + weights + metadata under their own format header, written atomically.

The header (``napari-semiconv-maskrcnn/1``) differs from our U-Net models' (``napari-semiconv-model/1``),
so a file given as ``--model`` says which kind it is. Files are read with ``weights_only=True``.
"""

import os
from pathlib import Path

import torch
from torchvision.models.detection import MaskRCNN

from .. import __version__
from ..atomic import atomic_write
from ..errors import SemiconvError
from .adapter import FORMAT
from .maskrcnn import BaselineConfig, build_baseline


def save_baseline(model: MaskRCNN, path: str | os.PathLike, metadata: dict | None = None,
                  extra: dict | None = None) -> Path:
    """Write ``model`` (built by :func:`~.maskrcnn.build_baseline`) to ``path`` atomically; ``extra`` adds
    top-level entries (a checkpoint's optimizer state and training progress)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "version": __version__,
        "config": model.config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "metadata": dict(metadata or {}),
        **(extra or {}),
    }
    atomic_write(path, lambda tmp: torch.save(payload, tmp))
    return path


def read_baseline_file(path: str | os.PathLike) -> dict:
    """The checked payload of a baseline file (``weights_only=True``); SemiconvError if it is not one."""
    path = Path(path)
    if not path.is_file():
        raise SemiconvError(f"model file not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001, corrupt, truncated, pickled code, not a torch file
        raise SemiconvError(f"{path} is not a readable model file ({type(exc).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else None
        raise SemiconvError(f"{path} is not a Mask R-CNN baseline file (format {found!r}, not '{FORMAT}')")
    return payload


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
