"""Writer: a Labels layer to a uint16 (or uint32 if needed) TIFF, written atomically."""

from pathlib import Path

import numpy as np

from .atomic import atomic_write


def write_labels(path: str, data, meta: dict) -> list[str]:
    """Write ``data`` (Labels layer, (..., H, W) int) to ``path``; returns [path]."""
    import tifffile

    arr = np.asarray(data)
    dtype = np.uint16 if arr.max(initial=0) < 2**16 else np.uint32
    path = Path(path)
    if path.suffix.lower() not in (".tif", ".tiff"):
        path = path.with_suffix(".tif")
    atomic_write(path, lambda tmp: tifffile.imwrite(tmp, arr.astype(dtype), compression="zlib"))
    return [str(path)]
