"""Planes read piece by piece: checked and normalized band by band, bit for bit as :func:`~napari_semiconv.normalize.normalize`
does in memory, so a plane of any size costs the memory of one band.

A plane is any 2-D array-like that reads only what is sliced: a plane of
:class:`~napari_semiconv.data.readers.LazyPlanes`, or an ndarray.
"""

from collections import deque
from collections.abc import Iterator
from itertools import pairwise

import numpy as np

from .normalize import HIGH, LOW, check_binary, check_image, rescale

BAND_PIXELS = 2**21  # pixels read at once (8 MB as float32)


def bands(plane, name: str = "image") -> Iterator[np.ndarray]:
    """The ``(h, W)`` row bands (about BAND_PIXELS each, at least 8 rows) of an ``(H, W)`` plane, read one at
    a time and each checked as :func:`check_image` checks a plane (dtype, NaN/inf, at least 8 x 8)."""
    h, w = plane.shape
    cuts = np.linspace(0, h, max(1, min(h // 8, h * w // BAND_PIXELS)) + 1).astype(int)
    for r0, r1 in pairwise(cuts):
        yield check_image(np.asarray(plane[r0:r1]), name=name)


def check_plane(plane, name: str = "image", binary: bool = False) -> None:
    """SemiconvError (as :func:`check_image` / :func:`check_binary` say it) if ``plane`` cannot be segmented; reads it band by band."""
    deque(bands(plane, name), maxlen=0)
    if binary:
        check_binary(plane, name)


def _keys(band: np.ndarray) -> np.ndarray:
    """float32 values -> uint32 keys in the same order (sign bit flipped for positives, all bits for negatives)."""
    k = band.astype(np.float32).ravel().view(np.uint32)
    return np.where(k >> 31 == 1, ~k, k | np.uint32(0x80000000))


def _value(key: int) -> np.float32:
    """The float32 whose :func:`_keys` key is ``key``."""
    bits = key & 0x7FFFFFFF if key >> 31 else ~key & 0xFFFFFFFF
    return np.array([bits], np.uint32).view(np.float32)[0]


def percentiles(plane, qs: tuple[float, ...] = (LOW, HIGH), name: str = "image") -> list[np.float64]:
    """``np.percentile(np.asarray(plane, np.float32), qs)`` (method 'linear'), bit for bit, in two passes over
    the plane's bands: a histogram of the top 16 bits of each value's order-preserving key finds the bucket of
    every rank needed, a histogram of the low 16 bits inside those buckets the exact value."""
    h, w = plane.shape
    n = h * w
    virtual = (n - 1) * np.true_divide(np.asarray(qs, np.float64), 100)
    below = np.floor(virtual).astype(np.int64)
    ranks = np.unique(np.concatenate([below, np.minimum(below + 1, n - 1)]))
    top = sum(np.bincount(_keys(b) >> 16, minlength=2**16) for b in bands(plane, name))
    start = np.cumsum(top) - top  # rank of each bucket's first value
    bucket = np.searchsorted(np.cumsum(top), ranks, side="right")
    wanted = np.unique(bucket)
    low = np.zeros((len(wanted), 2**16), np.int64)
    for band in bands(plane, name):
        k = _keys(band)
        for i, b in enumerate(wanted):
            low[i] += np.bincount(k[k >> 16 == b] & 0xFFFF, minlength=2**16)
    at = {}
    for r, b in zip(ranks, bucket):
        i = np.searchsorted(wanted, b)
        at[r] = _value(int(b) << 16 | int(np.searchsorted(np.cumsum(low[i]), r - start[b], side="right")))
    out = []
    for v, lo in zip(virtual, below):
        a, b, t = at[lo], at[min(lo + 1, n - 1)], v - lo
        d = b - a  # numpy's _lerp, step for step (float32 bounds, float64 weight)
        out.append(b - d * (1 - t) if t >= 0.5 else a + d * t)
    return out


class NormalizedPlane:
    """An ``(H, W)`` plane as :func:`~napari_semiconv.normalize.normalize` would return it, computed per slice:
    ``x[rows, cols]`` reads that region and gives it as ``(h, w)`` float32. The percentiles (or, ``binary``,
    the two-level check) come from passes over the plane's bands when it is made."""

    def __init__(self, plane, binary: bool = False, name: str = "image"):
        self.plane, self.shape, self.binary = plane, tuple(plane.shape), binary
        if binary:
            check_plane(plane, name, binary)
        self.lo, self.hi = (0.0, 1.0) if binary else percentiles(plane, (LOW, HIGH), name)  # checks it too

    def __getitem__(self, key) -> np.ndarray:
        arr = np.asarray(self.plane[key])
        if self.binary:
            return (arr > 0).astype(np.float32)
        return rescale(arr, self.lo, self.hi)
