"""Synthetic C. elegans scenes modelled on BBBC010 (696 x 520 fields inside a round well).

Live worms are curved, smooth and tapered; dead worms straight, rod-like and textured. Worms
touch, cross and lie on top of each other. Two render styles: brightfield (dark bodies with a
bright halo on an unevenly lit background, a dark well rim cutting the corners, debris) and
fluorescence (bright bodies, some dim, on black, shot noise). Ground truth is an (N, H, W) bool
stack in which a pixel may belong to two worms, plus a label image with later worms on top.

Everything is deterministic from the seed. A scene may be rendered as a window of the virtual
field (``window=(row, col, h, w)``), which is how training draws fast random crops.
"""

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

FIELD = (520, 696)  # BBBC010 field (rows, cols)
STYLES = ("brightfield", "fluorescence")


@dataclass(frozen=True)
class SceneConfig:
    """Ranges (low, high) that each scene draws from uniformly."""

    style: str = "random"  # "brightfield", "fluorescence" or "random"
    worms: tuple = (10, 30)  # worms per full field
    half_width: tuple = (6.0, 10.0)  # px
    length: tuple = (150.0, 300.0)  # px
    dead_fraction: tuple = (0.0, 0.5)
    touching: float = 0.35  # probability a worm is laid beside or across an earlier one
    blur: tuple = (0.4, 1.8)  # Gaussian sigma, px
    noise: tuple = (0.005, 0.05)  # brightfield Gaussian noise, fraction of the background
    photons: tuple = (30.0, 400.0)  # fluorescence photons at full brightness
    debris: tuple = (0, 25)
    scale: tuple = (1.0, 1.0)  # magnification factor applied to widths and lengths
    bends: tuple = (1.0, 1.0)  # how often a worm bends along its body, relative to the defaults (drawn per scene
    # from a random stream of its own: scenes drawn with (1, 1) are the same bytes as before this setting existed)
    dtypes: tuple = ("uint16", "uint8", "float32")


@dataclass
class Scene:
    """One rendered scene."""

    image: np.ndarray  # (H, W) uint8 / uint16 / float32 intensities
    instances: np.ndarray  # (N, H, W) bool, overlaps kept
    labels: np.ndarray  # (H, W) uint16, later worms on top
    dead: np.ndarray  # (N,) bool
    style: str
    anchors: np.ndarray  # (N, 2) float32 (row, col) px: the midpoint of each worm's centre line (on its
    # body, possibly outside the window when the worm is cut by it)


def _centreline(rng, length, dead, start, heading, scale=1.0):
    """(L, 2) float points (row, col) one pixel apart, of a worm magnified ``scale`` times: its bends scale with
    it (a worm twice as long at 2x bends as often along its body as at 1x, not twice as often). A worm that bends
    b times as often is drawn at ``scale / b``."""
    n = max(int(length), 8)
    s = np.arange(n)
    if dead:  # turn per pixel: a random walk, its steps shrunk so that it reads the same per body length
        turn = rng.normal(0, 0.004 / scale**1.5, n).cumsum() * 0.5
    else:
        wavelength = rng.uniform(90, 260) * scale
        amp = rng.uniform(0.01, 0.045) / scale
        turn = amp * np.sin(2 * np.pi * s / wavelength + rng.uniform(0, 2 * np.pi))
        turn += ndi.gaussian_filter1d(rng.normal(0, 0.03 / scale**0.5, n), 12 * scale)
    theta = heading + np.cumsum(turn)
    pts = np.stack([np.sin(theta), np.cos(theta)], 1).cumsum(0)
    pts -= pts[n // 2]  # centre the worm on ``start``
    return pts + np.asarray(start, float)


def _width_profile(n, half_width, rng):
    """Half-width (px) along the body: blunt head, pointed tail."""
    t = np.linspace(0, 1, n)
    head = np.clip(t / rng.uniform(0.06, 0.12), 0, 1) ** 0.5
    tail = np.clip((1 - t) / rng.uniform(0.15, 0.3), 0, 1) ** 0.8
    return half_width * np.maximum(np.minimum(head, tail), 0.18)


def _render_worm(pts, widths, shape):
    """Distance field of one worm over its bounding box.

    Returns (r0, c0, dist, s_idx, w) with dist/w the distance to the centreline and the
    half-width at the nearest centreline point, or None when the worm misses the image.
    """
    pad = int(widths.max()) + 6
    r0, c0 = np.floor(pts.min(0)).astype(int) - pad
    r1, c1 = np.ceil(pts.max(0)).astype(int) + pad
    h, w = shape
    rr0, cc0, rr1, cc1 = max(r0, 0), max(c0, 0), min(r1, h), min(c1, w)
    if rr0 >= rr1 or cc0 >= cc1:
        return None
    box = np.ones((r1 - r0, c1 - c0), bool)
    ij = np.round(pts).astype(int) - [r0, c0]
    box[ij[:, 0], ij[:, 1]] = False
    sidx = np.full(box.shape, -1, int)
    sidx[ij[:, 0], ij[:, 1]] = np.arange(len(pts))
    dist, (ir, ic) = ndi.distance_transform_edt(box, return_indices=True)
    nearest = sidx[ir, ic]
    sl = (slice(rr0 - r0, rr1 - r0), slice(cc0 - c0, cc1 - c0))
    return rr0, cc0, dist[sl], nearest[sl], widths[nearest[sl]]


def _well(shape, window, rng):
    """(H, W) float in [0, 1]: 1 inside the round well, 0 beyond its rim, for the window."""
    fh, fw = FIELD
    centre = np.array([fh / 2, fw / 2]) + rng.normal(0, 15, 2)
    radius = rng.uniform(0.49, 0.56) * np.hypot(fh, fw)
    rows = np.arange(shape[0])[:, None] + window[0]
    cols = np.arange(shape[1])[None, :] + window[1]
    r = np.hypot(rows - centre[0], cols - centre[1])
    return np.clip((radius - r) / 6.0, 0, 1), centre, radius


def make_scene(seed: int, config: SceneConfig = SceneConfig(), window=None) -> Scene:
    """Render one scene, deterministic from ``seed``.

    window : (row, col, height, width) of the virtual 520 x 696 field to render; default the
    whole field. Returns a :class:`Scene` whose arrays have the window's shape.
    """
    rng = np.random.default_rng(seed)
    window = (0, 0) + FIELD if window is None else tuple(window)
    shape = window[2:]
    style = rng.choice(STYLES) if config.style == "random" else config.style
    well, centre, radius = _well(shape, window, rng)
    scale = rng.uniform(*config.scale)
    bends = np.random.default_rng([seed, 1]).uniform(*config.bends)
    dead_p = rng.uniform(*config.dead_fraction)
    # every worm of the field is laid out (cheap); only those touching the window are rendered
    n = rng.integers(config.worms[0], config.worms[1] + 1)
    worms, placed = [], []
    for _ in range(n):
        dead = rng.random() < dead_p
        length = rng.uniform(*config.length) * scale * (0.85 if dead else 1.0)
        half_width = rng.uniform(*config.half_width) * scale
        if placed and rng.random() < config.touching:  # beside or across an earlier worm
            other = placed[rng.integers(len(placed))]
            p = other[rng.integers(len(other))]
            start = p + rng.normal(0, half_width * 1.5, 2)
            heading = rng.uniform(0, 2 * np.pi)
        else:
            ang, rad = rng.uniform(0, 2 * np.pi), radius * np.sqrt(rng.uniform(0, 0.85))
            start = centre + rad * np.array([np.sin(ang), np.cos(ang)])
            heading = rng.uniform(0, 2 * np.pi)
        pts = _centreline(rng, length, dead, start, heading, scale / bends)
        placed.append(pts)
        worms.append((pts - window[:2], _width_profile(len(pts), half_width, rng), dead))

    style_rng = np.random.default_rng(rng.integers(2**32))
    image, instances, dead, anchors = _render(worms, shape, well, style, style_rng, config, scale)
    labels = np.zeros(shape, np.uint16)
    for i, m in enumerate(instances):
        labels[m] = i + 1
    image = _to_dtype(image, style_rng, config)
    return Scene(image, instances, labels, dead, str(style), anchors)


def _render(worms, shape, well, style, rng, config, scale=1.0):
    """The scene's image and worms; what lies in the specimen plane (worm texture, halo, debris, the optics' blur)
    is magnified ``scale`` times with the worms, the camera's noise is not."""
    h, w = shape
    absorb = np.zeros(shape)  # brightfield optical density
    emit = np.zeros(shape)  # fluorescence emission
    halo = np.zeros(shape)
    masks, dead_flags, anchors = [], [], []
    for pts, widths, dead in worms:
        r = _render_worm(pts, widths, shape)
        if r is None:
            continue
        r0, c0, dist, _sidx, wid = r
        cover = np.clip(wid - dist + 0.5, 0, 1)
        if cover.sum() < 30:
            continue
        m = np.zeros(shape, bool)
        sl = (slice(r0, r0 + dist.shape[0]), slice(c0, c0 + dist.shape[1]))
        m[sl] = cover >= 0.5
        if m.sum() < 30:
            continue
        masks.append(m)
        dead_flags.append(dead)
        anchors.append(pts[len(pts) // 2])
        shade = np.sqrt(np.clip(1 - (dist / wid) ** 2, 0, 1))
        texture = 1.0
        if dead:  # granular, blotchy texture along the body
            grain = ndi.gaussian_filter(rng.normal(0, 1, dist.shape), 1.5 * scale)
            texture = 1 + rng.uniform(0.3, 0.7) * grain / (grain.std() + 1e-9)
        strength = rng.uniform(0.5, 1.0) if style == "brightfield" else rng.choice(
            [rng.uniform(0.15, 0.4), rng.uniform(0.5, 1.0)], p=[0.25, 0.75])
        body = cover * (0.45 + 0.55 * shade) * texture * strength
        absorb[sl] += body
        emit[sl] += body
        halo[sl] = np.maximum(halo[sl], np.exp(-np.clip(dist - wid, 0, None) / (2.0 * scale)) * (dist > wid))
    if style == "brightfield":
        image = _brightfield(absorb, halo, well, rng, config, scale)
    else:
        image = _fluorescence(emit, well, rng, config, scale)
    stack = np.array(masks, bool).reshape(-1, h, w)
    return image, stack, np.array(dead_flags, bool), np.array(anchors, np.float32).reshape(-1, 2)


def _illumination(shape, rng):
    h, w = shape
    rows = np.linspace(-1, 1, h)[:, None]
    cols = np.linspace(-1, 1, w)[None, :]
    a, b, c = rng.normal(0, 0.12, 3)
    return 1 + a * rows + b * cols + c * (rows**2 + cols**2)


def _brightfield(absorb, halo, well, rng, config, scale):
    shape = absorb.shape
    bg = rng.uniform(0.5, 0.85) * _illumination(shape, rng)
    n_debris = rng.integers(*config.debris) if config.debris[1] > 0 else 0
    dots = np.zeros(shape)
    if n_debris:
        rr = rng.integers(0, shape[0], n_debris)
        cc = rng.integers(0, shape[1], n_debris)
        dots[rr, cc] = rng.uniform(2, 12, n_debris)
        dots = ndi.gaussian_filter(dots, rng.uniform(1, 2.5) * scale)
    transmission = np.exp(-rng.uniform(0.9, 1.8) * absorb - np.clip(dots, 0, 1.0))
    image = bg * transmission * (1 + rng.uniform(0.05, 0.25) * halo * (absorb < 0.05))
    rim = np.exp(-((well - 0.5) ** 2) / 0.05) * rng.uniform(0.0, 0.3)
    image = image * (well * (1 - rng.uniform(0.1, 0.5)) + rng.uniform(0.1, 0.5)) * (1 - rim)
    image = ndi.gaussian_filter(image, rng.uniform(*config.blur) * scale)
    return image + rng.normal(0, rng.uniform(*config.noise), shape) * bg.mean()


def _fluorescence(emit, well, rng, config, scale):
    image = ndi.gaussian_filter(emit, rng.uniform(*config.blur) * scale) * (0.3 + 0.7 * well)
    photons = rng.uniform(*config.photons)
    offset = rng.uniform(0, 0.05)
    return rng.poisson(np.clip(image + offset, 0, None) * photons) / photons


def _to_dtype(image, rng, config):
    dtype = rng.choice(config.dtypes)
    lo, hi = image.min(), image.max()
    unit = (image - lo) / max(hi - lo, 1e-9)
    if dtype == "uint8":
        top = rng.uniform(120, 255)
        return np.round(unit * top).astype(np.uint8)
    if dtype == "uint16":
        base, top = rng.uniform(0, 2000), rng.uniform(3000, 60000)
        return np.round(base + unit * (top - base)).astype(np.uint16)
    return (unit * rng.uniform(0.5, 1000)).astype(np.float32)
