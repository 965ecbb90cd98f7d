"""Model files: config + weights + version + metadata, written atomically, read weights-only."""

import os
from pathlib import Path

import torch

from .. import __version__
from ..atomic import atomic_write
from ..errors import SemiconvError
from .embedding import ModelConfig, SemiConvNet

FORMAT = "napari-semiconv-model/1"


def write_payload(model, path: str | os.PathLike, fmt: str, metadata: dict | None = None,
                  extra: dict | None = None) -> Path:
    """Write ``model`` (a module with a ``config.to_dict()``) under the format header ``fmt`` to ``path``
    atomically (:func:`~napari_semiconv.atomic.atomic_write`): a crash during the write leaves any previous
    file at ``path`` untouched. ``extra`` adds top-level entries (e.g. an optimizer state in a checkpoint).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": fmt,
        "version": __version__,
        "config": model.config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "metadata": dict(metadata or {}),
        **(extra or {}),
    }
    atomic_write(path, lambda tmp: torch.save(payload, tmp))
    return path


def read_payload(path: str | os.PathLike, fmt: str, unreadable: str, foreign: str) -> dict:
    """Load a model file's payload (``weights_only=True``) and check its format header is ``fmt``.

    Raises SemiconvError: ``{path} is not a readable ... ({error}); `` + ``unreadable`` when torch cannot
    read it (corrupt, truncated, pickled code, not a torch file), ``{path} `` + ``foreign`` when the header
    differs.
    """
    path = Path(path)
    if not path.is_file():
        raise SemiconvError(f"model file not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001, corrupt, truncated, pickled code, not a torch file
        raise SemiconvError(f"{path} is not a readable {unreadable} ({type(exc).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != fmt:
        raise SemiconvError(f"{path} {foreign}")
    return payload


def save_model(model: SemiConvNet, path: str | os.PathLike, metadata: dict | None = None,
               extra: dict | None = None) -> Path:
    """Write ``model`` to ``path`` atomically (:func:`write_payload`); ``extra`` adds top-level entries."""
    return write_payload(model, path, FORMAT, metadata, extra)


def read_model_file(path: str | os.PathLike) -> dict:
    """Load and check a model file's payload (``weights_only=True``); raise SemiconvError if bad."""
    return read_payload(path, FORMAT,
                        "napari-semiconv model file; pass a .pt file saved by napari-semiconv, or omit --model "
                        "to use the shipped one",
                        f"is a torch file but not a napari-semiconv model (no '{FORMAT}' header); "
                        "pass a model saved by napari-semiconv")


def load_model(path: str | os.PathLike, device: torch.device | str = "cpu") -> SemiConvNet:
    """Build the model stored at ``path`` on ``device`` in eval mode; ``model.metadata`` is set."""
    payload = read_model_file(path)
    try:
        config = ModelConfig(**payload["config"])
        model = SemiConvNet(config)
        model.load_state_dict(payload["state_dict"])
    except (TypeError, RuntimeError, KeyError) as exc:
        raise SemiconvError(f"{path}: weights do not match the stored config ({exc})") from None
    model.metadata = dict(payload.get("metadata", {}))
    model.metadata.setdefault("path", str(path))
    return model.to(device).eval()
