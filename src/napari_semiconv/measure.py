"""Per-worm measurements of sparse worm instances or an (N, H, W) stack (overlaps respected).

Units are pixels and radians; intensities in the image's own units.
"""

import numpy as np
from scipy import ndimage as ndi
from skimage.measure import regionprops
from skimage.morphology import skeletonize

from .instances import Instances

COLUMNS = ("label", "score", "area", "bbox_min_row", "bbox_min_col", "bbox_max_row", "bbox_max_col",
           "length", "mean_width", "curvature", "straightness", "mean_intensity")


def _skeleton_length(skel: np.ndarray) -> float:
    """Length (px) of a 1-px skeleton: orthogonal steps count 1, diagonal steps sqrt 2.

    A diagonal pair already joined through an orthogonal neighbour (a corner) is not counted.
    """
    s = skel.astype(bool)
    ortho = (s[1:, :] & s[:-1, :]).sum() + (s[:, 1:] & s[:, :-1]).sum()
    down_right = s[1:, 1:] & s[:-1, :-1] & ~s[1:, :-1] & ~s[:-1, 1:]
    down_left = s[1:, :-1] & s[:-1, 1:] & ~s[1:, 1:] & ~s[:-1, :-1]
    return float(max(ortho + np.sqrt(2) * (down_right.sum() + down_left.sum()), 1.0))


def _end_to_end(skel: np.ndarray) -> float:
    """Largest distance (px) between skeleton end points (pixels with one 8-neighbour)."""
    neighbours = ndi.convolve(skel.astype(np.uint8), np.ones((3, 3), np.uint8), mode="constant") - 1
    ends = np.argwhere(skel & (neighbours == 1)).astype(float)
    if len(ends) < 2:
        return 0.0
    return float(np.sqrt(((ends[:, None] - ends[None]) ** 2).sum(-1)).max())


def _curvature(mask: np.ndarray, skel: np.ndarray) -> float:
    """Median |d theta / ds| (rad/px) along the skeleton, theta the body orientation (the median
    ignores the head and tail, where the orientation of the mask turns round the tip).

    Orientation from the structure tensor of the smoothed mask, in the double-angle form so
    that theta and theta + pi agree.
    """
    m = ndi.gaussian_filter(mask.astype(np.float32), 2.0)
    gy, gx = np.gradient(m)
    jxx, jyy, jxy = (ndi.gaussian_filter(a, 3.0) for a in (gx * gx, gy * gy, gx * gy))
    c, s = jxx - jyy, 2 * jxy
    norm = np.hypot(c, s) + 1e-9
    c, s = c / norm, s / norm
    dcy, dcx = np.gradient(c)
    dsy, dsx = np.gradient(s)
    rate = 0.5 * np.sqrt(dcx**2 + dcy**2 + dsx**2 + dsy**2)  # |grad (2 theta)| / 2
    return float(np.median(rate[skel])) if skel.any() else 0.0


def measure_worms(instances: Instances | np.ndarray, image: np.ndarray | None = None,
                  scores: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Measurements of each worm in ``instances`` (:class:`Instances` or an ``(N, H, W)`` bool stack).

    image : optional (H, W) intensities for mean_intensity; scores : optional (N,) float.
    Returns a dict of equal-length columns (see COLUMNS), label = index + 1.
    straightness = end-to-end distance of the skeleton / its length, 1 for a straight rod.
    """
    if isinstance(instances, np.ndarray):
        instances = Instances.from_stack(instances)
    n = len(instances)
    cols = {k: np.zeros(n, np.float64) for k in COLUMNS}
    cols["label"] = np.arange(1, n + 1)
    cols["score"] = np.asarray(scores if scores is not None else np.full(n, np.nan), np.float64)
    for i, (box, tight) in enumerate(zip(instances.boxes, instances.crops)):
        if not tight.any():
            continue
        crop = np.pad(tight, 4)  # room for the smoothing in _curvature
        skel = skeletonize(crop)
        length = _skeleton_length(skel)
        props = regionprops(crop.astype(np.uint8))[0]
        cols["area"][i] = props.area
        cols["bbox_min_row"][i], cols["bbox_min_col"][i], cols["bbox_max_row"][i], cols["bbox_max_col"][i] = box
        cols["length"][i] = length
        cols["mean_width"][i] = props.area / length
        cols["curvature"][i] = _curvature(crop, skel)
        cols["straightness"][i] = min(_end_to_end(skel) / length, 1.0) if length > 1 else 1.0
        cols["mean_intensity"][i] = (float(image[box[0]:box[2], box[1]:box[3]][tight].mean())
                                     if image is not None else np.nan)
    for k in ("label", "area", "bbox_min_row", "bbox_min_col", "bbox_max_row", "bbox_max_col"):
        cols[k] = cols[k].astype(np.int64)
    return cols


def write_csv(path, table: dict[str, np.ndarray]) -> None:
    """Write a measurement table (dict of equal-length columns) as CSV."""
    keys = list(table)
    n = len(table[keys[0]]) if keys else 0
    with open(path, "w") as fh:
        fh.write(",".join(keys) + "\n")
        fh.writelines(",".join(_fmt(table[k][j]) for k in keys) + "\n" for j in range(n))


def _fmt(v) -> str:
    if isinstance(v, (np.integer, int)):
        return str(int(v))
    return f"{float(v):.4g}"
