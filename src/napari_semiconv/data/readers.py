"""Readers for real data: single images (read whole, or lazily: TIFF stacks and OME-Zarr), a plain
images/ + masks/ folder, BBBC010's layout.

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
ZARR_SUFFIX = ".zarr"  # an OME-Zarr image is a folder named *.zarr / *.ome.zarr
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


class Mapped:
    """An uncompressed, contiguous TIFF series as an array that reads what is sliced: each slice maps the
    file, copies what it selects and unmaps it again, so the pages read do not stay in this process's
    memory (as a long-lived ``np.memmap``'s would, up to the whole file)."""

    def __init__(self, path: Path, offset: int, shape: tuple[int, ...], dtype: np.dtype):
        self.path, self.offset, self.shape, self.dtype, self.ndim = path, offset, shape, dtype, len(shape)

    def __getitem__(self, key) -> np.ndarray:
        return np.array(np.memmap(self.path, self.dtype, "r", self.offset, self.shape)[key])


class LazyPlanes:
    """An array that reads what is sliced (zarr, :class:`Mapped`) of shape ``(..., H, W)`` seen as
    ``(N, H, W)`` planes (the leading axes, e.g. T, C, Z, flattened in C order), or as one ``(H, W)`` plane
    where N is 1; nothing is read until sliced.

    ``planes[t]`` is plane ``t`` (another LazyPlanes, still unread); a plane's ``[rows, cols]`` reads that
    region only (the chunks it meets), as an ndarray.
    """

    def __init__(self, array, plane: int | None = None):
        self.array, self.dtype = array, array.dtype
        lead, n = array.shape[:-2], int(np.prod(array.shape[:-2]))
        if plane is None and n == 1:
            plane = 0
        self.index = None if plane is None else np.unravel_index(plane, lead)
        self.shape = tuple(array.shape[-2:]) if self.index is not None else (n, *array.shape[-2:])
        self.ndim = len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key):
        if self.index is None:  # a plane of the stack
            return LazyPlanes(self.array, key)
        return self.array[(*self.index, *(key if isinstance(key, tuple) else (key,)))]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        return np.asarray(self[:, :] if self.index is not None else self.array[...], dtype)


def _zarr():
    try:
        import zarr
    except ImportError:
        raise SemiconvError("reading OME-Zarr needs zarr: pip install 'napari-semiconv[cluster]'") from None
    return zarr


def _open_zarr(path: Path) -> LazyPlanes:
    """The highest-resolution array of an (OME-)Zarr folder: the first dataset of its first multiscale (an
    OME-Zarr 0.4 group, or 0.5's under "ome"), else the folder's one array."""
    node = _zarr().open(path, mode="r")
    if hasattr(node, "arrays"):  # a group
        meta = node.attrs.get("ome", node.attrs).get("multiscales")
        if meta:
            node = node[meta[0]["datasets"][0]["path"]]
        else:
            arrays = [a for _, a in node.arrays()]
            if len(arrays) != 1:
                raise SemiconvError(f"{path} is a Zarr group with {len(arrays)} arrays and no OME multiscales "
                                    "metadata: point to the one array (a sub-folder) to segment")
            node = arrays[0]
    if node.ndim < 2:
        raise SemiconvError(f"{path} holds a {node.ndim}-D array: an image needs (..., H, W) axes")
    return LazyPlanes(node)


def _open_tiff(path: Path):
    """A TIFF without reading its pixels: mapped slice by slice (:class:`Mapped`) where its first series is
    stored uncompressed and contiguous, else a zarr view of its tiles/strips (where zarr is installed), else
    read whole. 2-D and 3-D images come as :class:`LazyPlanes`, others (4-D) as they are."""
    import tifffile

    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        nbytes = int(np.prod(series.shape)) * series.dtype.itemsize
        if series.dataoffset is not None and nbytes:
            if series.dataoffset + nbytes > path.stat().st_size:
                raise ValueError(f"the file ends before its last pixel: truncated ({path.stat().st_size} bytes)")
            array = Mapped(path, series.dataoffset, tuple(series.shape), np.dtype(tif.byteorder + series.dtype.char))
            return LazyPlanes(array) if array.ndim in (2, 3) else np.array(array[...])
    try:
        import zarr
    except ImportError:
        return tifffile.imread(path)
    array = zarr.open(tifffile.imread(path, aszarr=True, level=0), mode="r")
    return LazyPlanes(array) if array.ndim in (2, 3) else array


def open_image(path: str | Path):
    """An image to read plane by plane: ``(H, W)``, ``(N, H, W)`` or, for other shapes (RGB, 4-D TIFF), what
    :func:`read_image` would give, without reading the pixels where the format allows (TIFF, OME-Zarr).

    The result is an ndarray or a :class:`LazyPlanes`; slice it to read. An OME-Zarr
    folder's leading axes (T, C, Z) are flattened into N planes.
    """
    path = Path(path)
    if path.is_dir() and path.suffix.lower() == ZARR_SUFFIX:
        try:
            return _open_zarr(path)
        except SemiconvError:
            raise
        except Exception as exc:  # noqa: BLE001 (any failure -> one clear message)
            raise SemiconvError(f"cannot read {path} as (OME-)Zarr ({type(exc).__name__}: {exc})") from None
    if path.suffix.lower() not in (".tif", ".tiff"):
        return read_image(path)
    if not path.is_file():
        raise SemiconvError(f"no such image file: {path}")
    try:
        return _open_tiff(path)
    except Exception as exc:  # noqa: BLE001
        raise SemiconvError(f"cannot read {path} as an image ({type(exc).__name__}: {exc})") from None


def _is_image(p: Path) -> bool:
    return p.suffix.lower() in IMAGE_SUFFIXES if p.is_file() else p.suffix.lower() == ZARR_SUFFIX


def list_images(paths) -> list[Path]:
    """Expand files and folders (their image files and *.zarr folders, sorted) into a list of image paths; a
    *.zarr folder is one image."""
    out = []
    for p in map(Path, paths):
        if p.is_dir() and not _is_image(p):
            found = sorted(f for f in p.iterdir() if _is_image(f))
            if not found:
                raise SemiconvError(f"folder {p} holds no .tif/.png/.jpg images or .zarr folders")
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
