"""Choose the torch device: cuda, then mps, then cpu, unless the user names one."""

import torch

from ..errors import SemiconvError


def pick_device(name: str | None = None) -> torch.device:
    """Return the torch device for ``name`` ("auto"/None, "cpu", "cuda", "cuda:1", "mps")."""
    if name in (None, "", "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise SemiconvError(f"unknown device {name!r}: use auto, cpu, cuda or mps") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SemiconvError("device 'cuda' asked for but no CUDA GPU is available: choose the CPU (or auto)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise SemiconvError("device 'mps' asked for but Apple MPS is not available: choose the CPU (or auto)")
    return device
