"""Input checks and the one normalization every path uses (robust percentiles or binary)."""

import numpy as np

from .errors import SemiconvError

MAX_PIXELS = 64_000_000  # larger planes are refused (about 8000 x 8000)
LOW, HIGH = 1.0, 99.8  # percentiles mapped to 0 and 1


def check_image(image, name: str = "image") -> np.ndarray:
    """Validate a single-channel 2-D plane and return it as an ndarray.

    Raises SemiconvError with what is wrong and what to do for RGB, 3-D, empty, non-numeric,
    NaN/inf or oversized input.
    """
    arr = np.asarray(image)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise SemiconvError(f"{name} has dtype {arr.dtype}: give a numeric grayscale image")
    if arr.ndim == 3 and arr.shape[-1] in (3, 4):
        raise SemiconvError(
            f"{name} looks like RGB(A) with shape {arr.shape}: convert it to one channel "
            "(e.g. keep the brightfield channel) before segmenting")
    if arr.ndim != 2:
        raise SemiconvError(
            f"{name} has shape {arr.shape}, expected a 2-D (H, W) plane: pick one channel/plane, "
            "or segment a (T/Z, H, W) stack plane by plane")
    if arr.size == 0 or min(arr.shape) < 8:
        raise SemiconvError(f"{name} is empty or tiny (shape {arr.shape}): it needs at least 8 x 8 pixels")
    if arr.size > MAX_PIXELS:
        raise SemiconvError(
            f"{name} has {arr.size:,} pixels (limit {MAX_PIXELS:,}): crop or downsample it first")
    if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).sum())
        raise SemiconvError(f"{name} contains {bad} NaN/inf pixels: fill or mask them before segmenting")
    return arr


def check_binary(image: np.ndarray, name: str = "this image") -> np.ndarray:
    """A checked ``(H, W)`` plane (an array, or a lazy one that reads what is sliced) that must be a foreground
    mask (two values, judged on a strided subsample); SemiconvError naming ``name`` otherwise. Returns the plane."""
    sample = np.asarray(image[:: max(1, image.shape[0] // 256), :: max(1, image.shape[1] // 256)])
    levels = len(np.unique(sample))
    if levels > 2:
        raise SemiconvError(f"a binary foreground mask was expected (two values), but {name} has {levels} or "
                            "more grey levels: segment it as an ordinary image")
    return image


def rescale(arr: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """``arr`` with ``lo``..``hi`` mapped to 0..1, as float32; zeros where ``lo``..``hi`` is flat."""
    if hi - lo < 1e-12 * max(abs(hi), 1.0) or hi == lo:
        return np.zeros(arr.shape, np.float32)
    return ((arr.astype(np.float32) - lo) / (hi - lo)).astype(np.float32)


def normalize(image: np.ndarray, binary: bool = False, low: float = LOW, high: float = HIGH) -> np.ndarray:
    """``(H, W)`` any dtype -> ``(H, W)`` float32, percentiles ``low``..``high`` mapped to 0..1.

    ``binary=True`` is the paper's BBBC010 protocol: the input is a foreground mask, mapped to
    {0, 1}. A flat image maps to zeros.
    """
    arr = check_image(image)
    if binary:
        return (check_binary(arr) > 0).astype(np.float32)
    arr = arr.astype(np.float32)
    lo, hi = np.percentile(arr, [low, high])
    return rescale(arr, lo, hi)
