"""Readers for real data: single images, a plain images/ + masks/ folder, BBBC010's layout.

Folder layout: ``DIR/images/<stem>.tif`` and ``DIR/masks/<stem>.tif`` (an (H, W) label image or
an (N, H, W) instance stack; ``<stem>_masks.tif`` / ``<stem>_labels.tif`` also match).
BBBC010 layout: ``DIR/BBBC010_v2_images/*_w1_*.tif`` (brightfield), ``*_w2_*.tif`` (GFP) and
``DIR/BBBC010_v1_foreground_eachworm/<well>_<nn>_ground_truth.png`` (one binary PNG per worm).
"""

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import SemiconvError
from ..metrics import as_stack

IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg")
BBBC010_TRAIN = [f"{r}{c:02d}" for r in "AB" for c in range(1, 25)] + ["C01", "C02"]


@dataclass
class Annotated:
    """One annotated image."""

    name: str
    image: np.ndarray  # (H, W)
    instances: np.ndarray  # (N, H, W) bool


def read_image(path: str | Path) -> np.ndarray:
    """Read a TIFF/PNG/JPEG as an ndarray; SemiconvError if missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise SemiconvError(f"no such image file: {path}")
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            return tifffile.imread(path)
        import imageio.v3 as iio

        return np.asarray(iio.imread(path))
    except Exception as exc:  # noqa: BLE001 (any failure -> one clear message)
        raise SemiconvError(f"cannot read {path} as an image ({type(exc).__name__}: {exc})") from None


def list_images(paths) -> list[Path]:
    """Expand files and folders (their image files, sorted) into a list of image paths."""
    out = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise SemiconvError(f"folder {p} holds no .tif/.png/.jpg images")
            out.extend(found)
        elif p.exists():
            out.append(p)
        else:
            raise SemiconvError(f"no such file or folder: {p}")
    return out


def _mask_for(masks_dir: Path, stem: str) -> Path | None:
    for suffix in ("", "_masks", "_labels", "_mask"):
        for ext in IMAGE_SUFFIXES:
            cand = masks_dir / f"{stem}{suffix}{ext}"
            if cand.is_file():
                return cand
    return None


def read_folder(root: str | Path) -> list[Annotated]:
    """Read ``root/images`` + ``root/masks``; every image needs a mask and vice versa."""
    root = Path(root)
    images_dir, masks_dir = root / "images", root / "masks"
    if not images_dir.is_dir() or not masks_dir.is_dir():
        raise SemiconvError(f"{root} must contain images/ and masks/ folders")
    images = sorted(f for f in images_dir.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
    masks = sorted(f for f in masks_dir.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
    stems = {f.stem for f in images}
    orphans = [m.name for m in masks if not any(m.stem == s or m.stem.startswith(s + "_") for s in stems)]
    if orphans:
        raise SemiconvError(f"masks without an image in {images_dir}: {', '.join(orphans[:5])}")
    if not images:
        raise SemiconvError(f"{images_dir} holds no images")
    out = []
    for f in images:
        m = _mask_for(masks_dir, f.stem)
        if m is None:
            raise SemiconvError(f"image {f.name} has no mask in {masks_dir}")
        out.append(_annotated(f.stem, read_image(f), read_image(m), m))
    return out


def _annotated(name, image, mask, mask_path) -> Annotated:
    stack = as_stack(mask)
    if stack.shape[1:] != image.shape[:2] or image.ndim != 2:
        raise SemiconvError(f"{mask_path}: mask shape {mask.shape} does not match image {name} "
                            f"of shape {image.shape}")
    return Annotated(name, image, stack)


def read_bbbc010(root: str | Path, split: str = "train", channel: int = 1) -> list[Annotated]:
    """Read BBBC010 (``split`` "train": A01-B24, C01, C02; "test": C03-E04; "all").

    channel 1 = brightfield (w1), 2 = GFP (w2). Worm masks are the per-worm PNGs.
    """
    root = Path(root)
    img_dir = root / "BBBC010_v2_images"
    gt_dir = root / "BBBC010_v1_foreground_eachworm"
    for d in (img_dir, gt_dir):
        if not d.is_dir():
            raise SemiconvError(f"{root} is not a BBBC010 folder: {d.name}/ is missing")
    by_well: dict[str, Path] = {}
    for f in sorted(img_dir.glob(f"*_w{channel}_*.tif")) + sorted(img_dir.glob(f"*_w{channel}*.tif")):
        m = re.search(r"_([A-P]\d{2})_", f.name)
        if m:
            by_well.setdefault(m.group(1), f)
    if not by_well:
        raise SemiconvError(f"no channel w{channel} images (*_w{channel}_*.tif) in {img_dir}")
    worms: dict[str, list[Path]] = {}
    for f in sorted(gt_dir.glob("*_ground_truth.png")):
        worms.setdefault(f.name.split("_")[0], []).append(f)
    orphan = sorted(set(worms) - set(by_well))
    if orphan:
        raise SemiconvError(f"worm masks for wells without a w{channel} image: {', '.join(orphan[:5])}")
    wells = sorted(worms)
    if split == "train":
        wells = [w for w in wells if w in BBBC010_TRAIN]
    elif split == "test":
        wells = [w for w in wells if w not in BBBC010_TRAIN]
    out = []
    for well in wells:
        image = read_image(by_well[well])
        masks = np.stack([read_image(p) for p in worms[well]])
        if masks.ndim == 4:
            masks = masks[..., 0]
        out.append(_annotated(well, image, masks > 0, worms[well][0]))
    if not out:
        raise SemiconvError(f"no annotated wells in the {split} split of {root}")
    return out
