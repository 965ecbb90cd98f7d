"""The user's model registry: fine-tuned models in the user data folder (platformdirs).

Set ``NAPARI_SEMICONV_HOME`` to use another folder (tests do). Model names are file stems.
"""

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from .atomic import atomic_write
from .errors import SemiconvError
from .model.io import read_model_file, save_model


@dataclass
class Entry:
    """One registered model."""

    name: str
    path: Path
    metadata: dict


def registry_dir() -> Path:
    """Folder holding registered models (created on demand)."""
    root = os.environ.get("NAPARI_SEMICONV_HOME")
    if not root:
        import platformdirs

        root = platformdirs.user_data_dir("napari-semiconv", appauthor=False)
    return Path(root) / "models"


def _safe(name: str) -> str:
    clean = re.sub(r"[^A-Za-z0-9_.-]+", "_", name.strip()).strip("._")
    if not clean:
        raise SemiconvError(f"model name {name!r} has no usable characters: use letters, digits, _ . -")
    return clean


class Registry:
    """List, add, rename, delete and export models in :func:`registry_dir`."""

    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root else registry_dir()

    def files(self) -> list[Path]:
        """The registry's model files, newest first, unread (cheap: napari refreshes the dock's
        model list on every layer change, so listing must not load the models)."""
        if not self.root.is_dir():
            return []
        return sorted(self.root.glob("*.pt"), key=lambda f: f.stat().st_mtime, reverse=True)

    def list(self) -> list[Entry]:
        """Registered models with their metadata, newest first; unreadable files are skipped."""
        out = []
        for f in self.files():
            try:
                out.append(Entry(f.stem, f, read_model_file(f).get("metadata", {})))
            except SemiconvError:
                continue
        return out

    def find(self, name: str) -> Path | None:
        path = self.root / f"{_safe(name)}.pt"
        return path if path.is_file() else None

    def unique_name(self, base: str) -> str:
        base = _safe(base)
        name, i = base, 1
        while (self.root / f"{name}.pt").exists():
            i += 1
            name = f"{base}-{i}"
        return name

    def add(self, model, name: str, metadata: dict) -> Entry:
        """Save ``model`` under a new unique ``name`` (never overwrites), atomically."""
        name = self.unique_name(name)
        path = save_model(model, self.root / f"{name}.pt", metadata)
        return Entry(name, path, metadata)

    def rename(self, name: str, new: str) -> Path:
        src = self._existing(name)
        dst = self.root / f"{_safe(new)}.pt"
        if dst.exists():
            raise SemiconvError(f"a model named {new!r} already exists: choose another name")
        return src.rename(dst)

    def delete(self, name: str) -> None:
        self._existing(name).unlink()

    def export(self, name: str, dest: str | Path) -> Path:
        dest = Path(dest)
        if dest.is_dir():
            dest = dest / f"{_safe(name)}.pt"
        return atomic_write(dest, lambda tmp: shutil.copyfile(self._existing(name), tmp))

    def _existing(self, name: str) -> Path:
        path = self.find(name)
        if path is None:
            raise SemiconvError(f"no model named {name!r} in the registry ({self.root})")
        return path


def load_model_file(path: str | Path, device="cpu", baselines: bool = False):
    """The model stored at ``path`` on ``device``, its kind told by the file's header.

    A napari-semiconv model file gives a SemiConvNet (:func:`.model.load_model`). A Mask R-CNN baseline
    file (``benchmarks/paper_table.py``) gives, with ``baselines``, a segmenter with the same
    ``segment_iter`` interface (:func:`.baselines.adapter.load_segmenter`; SemiconvError, saying what to
    install, without torchvision); without ``baselines`` (e.g. fine-tuning) it is refused.
    """
    from .baselines.adapter import is_baseline_file, load_segmenter
    from .model import load_model

    if is_baseline_file(path):
        if not baselines:
            raise SemiconvError(f"{path} is a Mask R-CNN baseline model: it can only segment (napari-semiconv "
                                "segment --model, the Segment dock), not be fine-tuned, inspected or decoded "
                                "here; pass a napari-semiconv model")
        return load_segmenter(path, device)
    return load_model(path, device)


def resolve_model(path: str | None, device: str | None = None, baselines: bool = False):
    """Load ``path``, a registry name, or the shipped default model on the chosen device.

    With ``baselines`` a Mask R-CNN baseline file is accepted too (see :func:`load_model_file`): for segmenting.
    """
    from .model import load_model, pick_device

    dev = pick_device(device)
    if path is None:
        from .models import DEFAULT_MODEL

        if not DEFAULT_MODEL.is_file():
            raise SemiconvError("the shipped default model is missing from the installation: "
                                "reinstall napari-semiconv or pass --model")
        return load_model(DEFAULT_MODEL, dev)
    if not Path(path).exists():
        registry = Registry()
        entry = registry.find(path)
        if entry is not None:
            return load_model_file(entry, dev, baselines)
        names = [f.stem for f in registry.files()]
        raise SemiconvError(f"model {path!r} is neither a file nor a name in the model registry ({registry.root}; "
                            + (f"names: {', '.join(names)}" if names else "it holds no models yet") + ")")
    return load_model_file(path, dev, baselines)
