"""Image in, instances out: normalize -> forward (tiled for big planes) -> decode.

``segment_iter`` is a generator yielding :class:`Progress` messages and, last, a
:class:`Result`; the napari widget consumes it in a thread worker, the CLI with tqdm, and
``segment`` simply runs it to the end.
"""

import math
from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import cache
from itertools import pairwise
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from .decode import DecodeConfig, decode, model_decode_config
from .displacement import vote_offset
from .errors import SemiconvError
from .flow import flow_votes
from .instances import Instances
from .model.embedding import SemiConvNet, pixel_coordinates, resize
from .normalize import normalize
from .worm_size import MIN_WIDTH, scale_for_width, trained_worm_width


@dataclass(frozen=True)
class SegmentConfig:
    """How to run the model on one plane."""

    decode: DecodeConfig | None = None  # None: the decoder defaults with the model's own thresholds
    binary: bool = False  # input is a binary foreground mask (BBBC010 protocol)
    tile: int = 1024  # planes larger than this (at the size the model segments them) go tile by tile (memory
    # bounded)
    tile_overlap: int = 384  # overlap of neighbouring tiles (px); a worm is kept by the tile whose core holds its centre,
    # so half the overlap must exceed half a worm's length (BBBC010 worms: <= 300 px)
    keep_embedding: bool = True  # keep Psi (d, H, W) in the Result (for Inspect)
    tta: bool = False  # average the network over the 8 flips / quarter turns (8x the forward time)
    worm_width: float = 0.0  # typical worm width (px, mean_width) in the image; 0 = the model's own input scale

    def __post_init__(self):
        if self.tile < 64 or not 0 <= self.tile_overlap < self.tile:
            raise SemiconvError(f"tiles of {self.tile} px with {self.tile_overlap} px overlap cannot cover a plane: "
                                "give a tile of at least 64 px and an overlap of 0 up to less than the tile")
        if 0 < self.worm_width < MIN_WIDTH:
            raise SemiconvError(f"worm width {self.worm_width} px: worms under {MIN_WIDTH:.0f} px are too thin to "
                                "segment; image them at a higher magnification or enlarge the image")
        if self.worm_width < 0 or not np.isfinite(self.worm_width):
            raise SemiconvError(f"worm width {self.worm_width} px: give a positive width, or 0 to keep the "
                                "model's own scale")


@dataclass(frozen=True)
class Progress:
    """A progress message: ``done`` of ``total`` units of ``stage``."""

    stage: str
    done: int
    total: int


@dataclass
class Result:
    """Everything the model says about one plane."""

    labels: np.ndarray  # (H, W) uint16 (uint32 beyond 65,535 worms)
    instances: Instances  # N worm masks in their bounding boxes, overlaps kept
    scores: np.ndarray  # (N,) float32
    seeds: np.ndarray  # (N, 2) int row, col of each instance's seed pixel
    foreground: np.ndarray  # (H, W) float32 probability
    seed: np.ndarray | None  # (H, W) float32 the seed map: predicted K(Psi_u, own centre) (None: a Mask R-CNN)
    displacement: np.ndarray | None  # (2, H, W) float32 Phi^g in pixels, (dy, dx), common shift removed (None: a
    # Mask R-CNN baseline, baselines.adapter)
    vote_offset: np.ndarray  # (2,) float32 px, the common shift of all votes (displacement.vote_offset)
    embedding: np.ndarray | None  # (d, H, W) float32 Psi (u_hat in coord_scale units)
    sigma: float  # kernel bandwidth, Psi units (the model's base bandwidth where it predicts one per pixel)
    coord_scale: float  # pixels per Psi unit in the spatial dims
    sigma_map: np.ndarray | None = None  # (H, W) float32 bandwidth per pixel, Psi units (anchored models)
    absent: str = ""  # which outputs this model cannot give, for the user (a Mask R-CNN: displacement, embedding)


def _starts(n: int, tile: int, overlap: int) -> list[int]:
    """Start offsets along one axis so tiles of size ``tile`` cover 0..n with ``overlap``."""
    if n <= tile:
        return [0]
    starts = list(range(0, n - tile, tile - overlap)) + [n - tile]
    return sorted(set(starts))


class Tile(NamedTuple):
    """One tile of a plane: where it is, and the part of it that it owns (its core)."""

    rows: slice  # the tile in the plane
    cols: slice
    core: tuple[slice, slice]  # the core, relative to the tile
    dst: tuple[slice, slice]  # the same core in the plane


def _cores(starts: list[int], size: int, n: int) -> list[slice]:
    """Core of each tile along one axis (plane coordinates): the cores partition 0..n, each border in
    the middle of the real overlap of two neighbouring tiles."""
    cuts = [0] + [(nxt + cur + size) // 2 for cur, nxt in pairwise(starts)] + [n]
    return [slice(a, b) for a, b in pairwise(cuts)]


def _tiles(h: int, w: int, config: SegmentConfig) -> list[Tile]:
    """Overlapping tiles of an ``(h, w)`` plane whose cores partition the plane."""
    th, tw = min(config.tile, h), min(config.tile, w)
    rows, cols = _starts(h, config.tile, config.tile_overlap), _starts(w, config.tile, config.tile_overlap)
    out = []
    for r, core_r in zip(rows, _cores(rows, th, h)):
        for c, core_c in zip(cols, _cores(cols, tw, w)):
            rel = (slice(core_r.start - r, core_r.stop - r), slice(core_c.start - c, core_c.stop - c))
            out.append(Tile(slice(r, r + th), slice(c, c + tw), rel, (core_r, core_c)))
    return out


def _forward(model: SemiConvNet, x: np.ndarray, rows: slice, cols: slice, tta: bool = False) -> dict:
    """The network on one tile of a normalized plane: fg, seed, sigma, image (the tile) (h, w), count (h, w) int
    (worms per pixel, 0 / 1 / 2+), phi, psi (d, h, w) and shift (2, h, w) (dy, dx) px, where each pixel's
    vote lands from it (Phi^g in pixels) tensors. sigma is the model's one bandwidth
    everywhere and count is -1 (unknown) for models without those heads.

    u_hat uses the tile's origin, so Psi is in the plane's frame and tiles agree. ``tta`` averages the
    outputs over the 8 flips and 90-degree rotations of the tile (8 forwards), each mapped back (the
    displacement vectors rotated with it).
    """
    device = next(model.parameters()).device
    patch = torch.from_numpy(np.ascontiguousarray(x[rows, cols]))[None, None].to(device)
    views = [(k, flip) for flip in (False, True) for k in range(4)] if tta else [(0, False)]
    fields = []
    for k, flip in views:
        out = model(dihedral(patch, k, flip))
        sigma = out.sigma if out.sigma is not None else model.sigma.expand_as(out.fg_logit)
        seed = torch.sigmoid(out.seed_logit) if out.seed_logit is not None else torch.zeros_like(sigma)
        parts = [torch.sigmoid(out.fg_logit), seed, sigma]
        parts += [out.count_logit] if out.count_logit is not None else []
        phi = _undo(out.phi[0], k, flip)
        vectors = 4 if model.config.flow_pair else 2  # (dx, dy) pairs among phi's channels
        phi = torch.cat([*(_undo_vectors(v, k, flip) for v in phi[:vectors].split(2)), phi[vectors:]])
        fields.append((_undo(torch.cat(parts, 1)[0], k, flip), phi))
    scalars = torch.stack([f[0] for f in fields]).mean(0)  # fg, seed, sigma (, 3 count logits)
    phi = torch.stack([f[1] for f in fields]).mean(0)
    fg, seed = scalars[0], scalars[1]
    origin = (rows.start, cols.start)
    u = pixel_coordinates(*phi.shape[-2:], model.config.dim, model.config.coord_scale, origin=origin, device=device)
    if model.config.target == "flow":  # Psi: where the flow leads each pixel (Phi^g: the way there)
        crossing = torch.softmax(scalars[3:], 0)[2]
        steps = round(model.config.flow_steps * model.config.input_scale)
        psi, seed = flow_votes(phi, fg, crossing, steps, model.config.coord_scale, origin)
        phi = psi - u
    else:
        psi = phi + u if model.config.semiconv else phi
    return {"fg": fg, "seed": seed, "phi": phi, "psi": psi, "sigma": scalars[2],
            "shift": torch.stack([phi[1], phi[0]]) * model.config.coord_scale, "image": patch[0, 0],
            "count": _count(scalars[3:]) if len(scalars) > 3 else torch.full_like(fg, -1)}


def _count(logits: torch.Tensor) -> torch.Tensor:
    """``(3, H, W)`` logits of 0, 1, 2+ worms -> ``(H, W)`` float, the likeliest count (as argmax over dim 0,
    which torch runs ~30x slower on CPU than these comparisons; ties go to the lower count)."""
    none, one, more = logits
    return torch.where((more > none) & (more > one), 2.0, torch.where(one > none, 1.0, 0.0))


def dihedral(t: torch.Tensor, k: int, flip: bool) -> torch.Tensor:
    """``(..., H, W)``: flipped left-right (if ``flip``), then rotated ``k`` times by 90 degrees."""
    return torch.rot90(torch.flip(t, (-1,)) if flip else t, k, (-2, -1))


def _undo(t: torch.Tensor, k: int, flip: bool) -> torch.Tensor:
    """The inverse of :func:`dihedral` on a ``(C, H, W)`` field."""
    t = torch.rot90(t, -k, (-2, -1))
    return torch.flip(t, (-1,)) if flip else t


def dihedral_vectors(v: torch.Tensor, k: int, flip: bool) -> torch.Tensor:
    """``(2, H, W)`` (dx, dy) vectors of a field as they read on its :func:`dihedral` view (the field already moved
    by :func:`dihedral`): the flip negates dx, each quarter turn maps (dx, dy) to (dy, -dx). The inverse of
    :func:`_undo_vectors`."""
    dx, dy = (-v[0] if flip else v[0]), v[1]
    for _ in range(k):
        dx, dy = dy, -dx
    return torch.stack([dx, dy])


def _undo_vectors(v: torch.Tensor, k: int, flip: bool) -> torch.Tensor:
    """``(2, H, W)`` (dx, dy) vectors predicted on a :func:`dihedral` view, in the original frame (the
    field already moved back by :func:`_undo`): each inverse quarter turn maps (dx, dy) to (-dy, dx), the
    flip negates dx."""
    dx, dy = v[0], v[1]
    for _ in range(k):
        dx, dy = -dy, dx
    return torch.stack([-dx if flip else dx, dy])


def decode_outputs(out: dict, config: DecodeConfig):
    """Decode one forward's outputs (a dict as :func:`predict_iter` yields it) -> ``decode.Decoded``."""
    return decode(out["psi"], out["fg"], out["seed"], out["sigma"], config,
                  None if bool(out["count"][0, 0] < 0) else out["count"], out["shift"], out.get("image"))


@torch.no_grad()
def predict_iter(model: SemiConvNet, x: np.ndarray, config: SegmentConfig) -> Iterator:
    """Run the network on a normalized ``(H, W)`` float32 plane, tile by tile.

    Yields Progress per tile, then a dict of torch tensors on the model's device:
    fg, seed, sigma, count, image (H, W), phi, psi (d, H, W), shift (2, H, W) (see :func:`_forward`), each pixel from the
    tile owning it.
    """
    device = next(model.parameters()).device
    h, w = x.shape
    full = {key: torch.empty((h, w), device=device) for key in ("fg", "seed", "sigma", "count", "image")}
    full.update({key: torch.empty((model.config.dim, h, w), device=device) for key in ("phi", "psi")})
    full["shift"] = torch.empty((2, h, w), device=device)
    for t, out, progress in _tile_outputs(model, x, config, "network"):
        for key, value in out.items():
            full[key][(..., *t.dst)] = value[(..., *t.core)]
        yield progress
    yield full


def _tile_outputs(model: SemiConvNet, x: np.ndarray, config: SegmentConfig, stage: str) -> Iterator:
    """The one loop over a plane's tiles: (tile, its network outputs, Progress) per tile.

    On a CPU the model's convolution weights are first laid out channels-last, in place: the network on a 696 x 520
    image takes 0.30 s instead of 0.48 s on 2 cores (docs/training/s31/stages.log; training, where that layout is
    slower, lays them out back: :func:`.train.train_iter`)."""
    if next(model.parameters()).device.type == "cpu":
        model.to(memory_format=torch.channels_last)
    tiles = _tiles(*x.shape, config)
    for i, t in enumerate(tiles):
        yield t, _forward(model, x, t.rows, t.cols, config.tta), Progress(stage, i + 1, len(tiles))


def _prepared(model, config: SegmentConfig):
    """The model (seeing the image resized where ``config.worm_width`` asks) and the config with the
    decoder settings filled in (the model's own thresholds where ``config.decode`` is None)."""
    if config.decode is None:
        config = replace(config, decode=model_decode_config(model))
    if config.worm_width > 0:
        model = model.with_input_scale(scale_for_width(config.worm_width, trained_worm_width(model)))
        config = replace(config, decode=replace(config.decode, pixel_scale=model.config.input_scale))
    return model, config


def segment_iter(model, image: np.ndarray, config: SegmentConfig = SegmentConfig()
                 ) -> Iterator[Progress | Result]:
    """Segment one ``(H, W)`` plane in memory. Yields Progress messages, then the Result (last item).

    Planes up to one tile are decoded whole; larger ones (mosaics) tile by tile, see
    :func:`_segment_tiled`; the Result holds per-pixel maps of the whole plane (about 40 bytes a pixel, and
    planes over ``normalize.MAX_PIXELS`` are refused): for planes of any size use :func:`segment_stream`.
    A model with an input scale above 1 (or ``config.worm_width``) segments the image resized so that its worms are
    as wide as the model's training worms (:func:`at_training_size`), the Result mapped back to the image's size. A
    model with a ``segment_iter`` method of its own (a Mask R-CNN baseline,
    :class:`~napari_semiconv.baselines.adapter.BaselineSegmenter`) segments the plane itself.
    """
    if hasattr(model, "segment_iter"):
        yield from model.segment_iter(image, config)
        return
    model, config = _prepared(model, config)
    x = normalize(image, binary=config.binary)
    yield Progress("normalize", 1, 1)
    scale = shrink_factor(model)
    if scale == 1:
        yield from _segment_plane(model, x, config)
        return
    native, small = at_training_size(model, x)
    for item in _segment_plane(native, small, replace(config, decode=at_training_scale(config.decode, scale))):
        yield item if isinstance(item, Progress) else _enlarged(item, x.shape, scale)


def streams(model, shape: tuple[int, int], config: SegmentConfig) -> bool:
    """Whether a plane of ``shape`` (H, W) is too large for :func:`segment_iter`'s one pass and is best segmented tile
    by tile and read lazily (:func:`segment_stream`): its longer side, at the size the model segments it, exceeds
    ``config.tile`` (a model's own ``segment_iter``, a baseline's, is never streamed)."""
    if hasattr(model, "segment_iter"):
        return False
    return math.ceil(max(shape) / shrink_factor(_prepared(model, config)[0])) > config.tile


def shrink_factor(model: SemiConvNet) -> float:
    """How many times a plane is shrunk before the network and the decoder (:func:`at_training_size`): the model's
    input scale where it is above 1, else 1 (worms narrower than the training worms: the network sees the image
    enlarged, the decoder does not; an image enlarged for the decoder would cost memory and time times the scale
    squared)."""
    return max(model.config.input_scale, 1.0)


def at_training_scale(config: DecodeConfig, scale: float) -> DecodeConfig:
    """``config`` (sizes in the pixels of an image seen at input scale ``scale``) for decoding that image resized by
    ``1 / scale`` (:func:`at_training_size`): the minimum worm size in its pixels, the pixel scale 1."""
    return replace(config, pixel_scale=1.0, min_size=max(1, round(config.min_size / scale**2)))


def at_training_size(model: SemiConvNet, x: np.ndarray) -> tuple[SemiConvNet, np.ndarray]:
    """``model`` at input scale 1 (a view) and the normalized ``(H, W)`` float32 plane ``x`` resized by
    ``1 / input_scale`` (area averaging to shrink, bilinear to enlarge; ``ceil(H / input_scale)`` rows, as the
    network resizes it): the network and the decoder, whose joiner, painter and rescorer learned on worms of the
    training size, then run as on their training images (a 2x brightfield domain: avS 0.557 -> 0.617 against
    decoding at the image's size, docs/training/s36/resize_lab40*.log). For input scales above 1
    (:func:`shrink_factor`)."""
    s = model.config.input_scale
    size = (max(1, math.ceil(x.shape[0] / s)), max(1, math.ceil(x.shape[1] / s)))
    small = resize(torch.from_numpy(np.ascontiguousarray(x, np.float32))[None, None], size)[0, 0].numpy()
    return model.with_input_scale(1.0), small


def _enlarged(small: Result, shape: tuple[int, int], scale: float) -> Result:
    """A Result of the plane resized by :func:`at_training_size` mapped back to the plane's ``shape`` (H, W):
    masks and maps interpolated bilinearly (masks cut at 0.5), positions and displacements in the plane's pixels,
    embeddings and bandwidths times ``scale`` (the model's input scale) as the network scales them."""
    fy, fx = shape[0] / small.labels.shape[0], shape[1] / small.labels.shape[1]

    def maps(a: np.ndarray | None) -> np.ndarray | None:  # (..., h, w) -> (..., H, W) float32
        if a is None:
            return None
        t = torch.from_numpy(np.ascontiguousarray(a, np.float32))
        return F.interpolate(t.reshape(1, -1, *a.shape[-2:]), size=shape, mode="bilinear",
                             align_corners=False).reshape(*a.shape[:-2], *shape).numpy()

    instances = small.instances.resized(shape)
    owned = Instances(small.instances.shape, small.instances.boxes,  # the pixels the label image gives each worm
                      [small.labels[r0:r1, c0:c1] == i + 1 for i, (r0, c0, r1, c1) in enumerate(small.instances.boxes)])
    labels = owned.resized(shape).paint()
    labels = np.where(labels > 0, labels, instances.paint())  # where three owners meet, none may pass 0.5: the first
    # worm holding the pixel
    px = np.array([fy, fx], np.float32)
    per_dim = np.full(0 if small.embedding is None else len(small.embedding), scale, np.float32)
    per_dim[:2] = (fx, fy)[: len(per_dim)]  # Psi's spatial dims (x, y) in the image's pixels per axis
    seeds = np.clip(np.round((small.seeds + 0.5) * px - 0.5), 0, np.array(shape) - 1).astype(small.seeds.dtype)
    return replace(small, labels=labels.astype(np.uint16) if len(instances) < 2**16 else labels, instances=instances,
                   seeds=seeds, foreground=maps(small.foreground), seed=maps(small.seed),
                   displacement=None if small.displacement is None else maps(small.displacement) * px[:, None, None],
                   vote_offset=small.vote_offset * px,
                   embedding=None if small.embedding is None else maps(small.embedding) * per_dim[:, None, None],
                   sigma=small.sigma * scale,
                   sigma_map=None if small.sigma_map is None else maps(small.sigma_map) * scale)


def _segment_plane(model: SemiConvNet, x: np.ndarray, config: SegmentConfig) -> Iterator[Progress | Result]:
    """Forward and decode the normalized ``(H, W)`` plane ``x`` (tile by tile beyond ``config.tile``): Progress
    messages, then the Result."""
    if max(x.shape) > config.tile:
        yield from _segment_tiled(model, x, config)
        return
    *progress, out = predict_iter(model, x, config)
    yield from progress
    dec = decode_outputs(out, config.decode)
    yield Progress("decode", 1, 1)
    yield _result(model, dec.labels, Instances.from_stack(dec.instances), dec.scores, dec.seeds,
                  out["fg"].cpu().numpy(), out["seed"].cpu().numpy(),
                  out["shift"].cpu().numpy(),
                  out["psi"].cpu().numpy() if config.keep_embedding else None, out["sigma"].cpu().numpy())


@dataclass
class Worms:
    """The worms of one plane and nothing per pixel: what :func:`segment_stream` keeps of a plane of any size."""

    instances: Instances  # N worm masks in their bounding boxes, overlaps kept
    owned: Instances  # the same N boxes, each holding the pixels the label image gives its worm
    scores: np.ndarray  # (N,) float32
    seeds: np.ndarray  # (N, 2) int64 row, col of each worm's seed pixel

    @classmethod
    def join(cls, parts: list["Worms"], shape: tuple[int, int]) -> "Worms":
        """The worms of ``parts`` (one per tile of a plane of ``shape``) one after another, less any worm that
        another part also kept (IoU > 0.5; the better scored stays): two tiles that decode a worm differently
        (merged with a neighbour in one, alone in the other) may each keep their version."""
        kept = []
        for part in parts:  # loop over tiles
            kept.append(part.select(np.flatnonzero(_unique(part, kept))))
        parts = kept
        return cls(Instances.join([p.instances for p in parts], shape), Instances.join([p.owned for p in parts], shape),
                   np.concatenate([np.zeros(0, np.float32), *(p.scores for p in parts)]),
                   np.concatenate([np.zeros((0, 2), np.int64), *(p.seeds for p in parts)]))

    def labels(self, rows: slice = slice(None), cols: slice = slice(None)) -> np.ndarray:
        """``(h, w)`` uint32 label image of the region ``rows`` x ``cols`` (worm ``i`` -> ``i + 1``)."""
        return self.owned.paint(rows, cols)

    def select(self, index: np.ndarray) -> "Worms":
        """The worms ``index`` (an int array), in that order."""
        return Worms(self.instances.select(index), self.owned.select(index), self.scores[index], self.seeds[index])


def _unique(part: Worms, earlier: list[Worms]) -> np.ndarray:
    """``(N,)`` bool: which of ``part``'s worms no earlier part kept better (IoU > 0.5 with a higher-scored worm),
    where an earlier twin scored lower is dropped from ``earlier`` in place."""
    keep = np.ones(len(part.scores), bool)
    for k, other in enumerate(earlier):  # loop over the (few) earlier tiles
        a, b = part.instances.boxes, other.instances.boxes
        meet = ((a[:, None, 0] < b[None, :, 2]) & (b[None, :, 0] < a[:, None, 2]) & (a[:, None, 1] < b[None, :, 3])
                & (b[None, :, 1] < a[:, None, 3]))
        drop = np.zeros(len(other.scores), bool)
        for i, j in zip(*np.nonzero(meet)):  # loop over pairs of worms whose boxes meet
            if _iou(part.instances, i, other.instances, j) > 0.5:
                if part.scores[i] > other.scores[j]:
                    drop[j] = True
                else:
                    keep[i] = False
        earlier[k] = other.select(np.flatnonzero(~drop))
    return keep


def _iou(x: Instances, i: int, y: Instances, j: int) -> float:
    """IoU of mask ``i`` of ``x`` and mask ``j`` of ``y`` (on the same plane), within the union of their boxes."""
    r0, c0 = np.minimum(x.boxes[i, :2], y.boxes[j, :2])
    r1, c1 = np.maximum(x.boxes[i, 2:], y.boxes[j, 2:])
    window = (slice(r0, r1), slice(c0, c1))
    m, n = x.select([i]).paint(*window) > 0, y.select([j]).paint(*window) > 0
    return float((m & n).sum() / max((m | n).sum(), 1))


def _tile_worms(model: SemiConvNet, x, config: SegmentConfig) -> Iterator:
    """The tiled decoder: per tile of the normalized ``(H, W)`` plane ``x`` (an array, or a
    :class:`~napari_semiconv.planes.NormalizedPlane`), (tile, its network outputs, the Worms it keeps, Progress).

    Each tile is decoded alone (Psi is in the plane's frame, so the kernel means the same in every tile)
    and keeps the worms whose centroid lies in its core and that do not touch one of its edges inside
    the plane; the cores partition the plane, so each worm is kept by one tile, whole even where it
    crosses a tile border (the overlap exceeds half a worm). A worm cut by a tile's edge is a piece
    (a flow model gives it a sink of its own): the tile that holds the worm whole keeps it.
    """
    h, w = x.shape
    for t, out, progress in _tile_outputs(model, x, config, "tiles"):
        dec = decode_outputs(out, config.decode)
        origin = np.array([t.rows.start, t.cols.start])
        found = Instances.from_stack(dec.instances, tuple(origin), (h, w))
        centre = found.centroids()
        (r_lo, r_hi), (c_lo, c_hi) = ((d.start, d.stop) for d in t.dst)
        b = found.boxes
        cut = (((b[:, 0] <= t.rows.start) & (t.rows.start > 0)) | ((b[:, 2] >= t.rows.stop) & (t.rows.stop < h))
               | ((b[:, 1] <= t.cols.start) & (t.cols.start > 0)) | ((b[:, 3] >= t.cols.stop) & (t.cols.stop < w)))
        own = np.flatnonzero((centre[:, 0] >= r_lo) & (centre[:, 0] < r_hi) & (centre[:, 1] >= c_lo)
                             & (centre[:, 1] < c_hi) & ~cut)
        local = found.boxes[own] - np.tile(origin, 2)
        owned = [dec.labels[r0:r1, c0:c1] == j + 1 for j, (r0, c0, r1, c1) in zip(own, local)]
        yield t, out, Worms(found.select(own), Instances((h, w), found.boxes[own], owned), dec.scores[own],
                            dec.seeds[own].astype(np.int64).reshape(-1, 2) + origin), progress


@torch.no_grad()
def _segment_tiled(model: SemiConvNet, x: np.ndarray, config: SegmentConfig) -> Iterator:
    """Forward and decode tile by tile (:func:`_tile_worms`), keeping the per-pixel maps of the whole plane
    for the Result; memory grows with the plane, not with (worms x pixels)."""
    h, w = x.shape
    fg, seed, sig = (np.zeros((h, w), np.float32) for _ in range(3))
    disp = np.zeros((2, h, w), np.float32)
    emb = np.zeros((model.config.dim, h, w), np.float32) if config.keep_embedding else None
    parts = []
    for t, out, kept, progress in _tile_worms(model, x, config):
        for dst, key in ((fg, "fg"), (seed, "seed"), (sig, "sigma")):
            dst[t.dst] = out[key][t.core].cpu().numpy()
        disp[(slice(None), *t.dst)] = out["shift"][(slice(None), *t.core)].cpu().numpy()
        if emb is not None:
            emb[(slice(None), *t.dst)] = out["psi"][(slice(None), *t.core)].cpu().numpy()
        parts.append(kept)
        yield progress
    worms = Worms.join(parts, (h, w))
    labels = worms.labels()
    yield _result(model, labels.astype(np.uint16) if len(worms.scores) < 2**16 else labels, worms.instances,
                  worms.scores.astype(np.float32), worms.seeds, fg, seed, disp, emb, sig)


@torch.no_grad()
def segment_stream(model: SemiConvNet, plane, config: SegmentConfig = SegmentConfig()) -> Iterator[Progress | Worms]:
    """Segment one ``(H, W)`` plane of any size tile by tile, reading it tile by tile: yields Progress
    messages, then its :class:`Worms` (last item).

    ``plane`` is any 2-D array-like that reads what is sliced (a plane of
    :class:`~napari_semiconv.data.readers.LazyPlanes`, an ndarray). It is normalized as :func:`segment_iter`
    normalizes (exactly: :class:`~napari_semiconv.planes.NormalizedPlane`, two passes over its row bands),
    and each tile's outputs are dropped once its worms are kept, so memory holds one tile's maps and the
    worms in their bounding boxes, whatever the plane's size. The labels are those of :func:`segment_iter`
    with the same tiling (a plane up to one tile is one tile); render them region by region with
    :meth:`Worms.labels`. For :class:`SemiConvNet` models (a baseline has no tiled decoder). A model with an input
    scale decodes here at the image's own size (:func:`segment_iter` at the training size): :func:`streams` sends a
    plane here only when even at the training size it exceeds a tile.
    """
    from .planes import NormalizedPlane

    _fixed_mmap_threshold()
    model, config = _prepared(model, config)
    x = NormalizedPlane(plane, config.binary)
    yield Progress("normalize", 1, 1)
    parts = []
    for _, _, kept, progress in _tile_worms(model, x, config):
        parts.append(kept)
        yield progress
    yield Worms.join(parts, x.shape)


MMAP_THRESHOLD = 2**20  # bytes: C allocations from this size up get pages of their own, returned when freed


@cache
def _fixed_mmap_threshold() -> None:
    """Have glibc serve every allocation of MMAP_THRESHOLD bytes or more by mmap (once per process; nothing
    where the C library is another). By default glibc raises that threshold to the size of the largest
    buffer freed so far (up to 32 MB), after which a tile's buffers come from the heap, where they fragment:
    resident memory then grows with the number of tiles (a 3072^2 plane: 923 MB peak; with this 729 MB)."""
    import ctypes
    import ctypes.util

    try:
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt(-3, MMAP_THRESHOLD)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        pass


def _result(model, labels, instances, scores, seeds, fg, seed, displacement, embedding, sigma_map) -> Result:
    """Package one plane's outputs; removes the common vote shift from the displacement (eq. 5 models:
    an anchored model's votes have no common shift)."""
    offset = (vote_offset(displacement, labels) if model.config.target == "eq5" else np.zeros(2, np.float32))
    return Result(labels=labels, instances=instances, scores=scores, seeds=seeds, foreground=fg,
                  seed=seed, displacement=displacement - offset[:, None, None], vote_offset=offset,
                  embedding=embedding, sigma=model.sigma.item(), coord_scale=model.config.coord_scale,
                  sigma_map=sigma_map if model.config.target != "eq5" else None)


def segment(model, image: np.ndarray, config: SegmentConfig = SegmentConfig()) -> Result:
    """Segment one ``(H, W)`` plane with ``model`` (a SemiConvNet, or a baseline as :func:`segment_iter` says) and
    return its :class:`Result`."""
    *_, result = segment_iter(model, image, config)
    return result
