"""Image in, instances out: normalize -> forward (tiled for big planes) -> decode.

``segment_iter`` is a generator yielding :class:`Progress` messages and, last, a
:class:`Result`; the napari widget consumes it in a thread worker, the CLI with tqdm, and
``segment`` simply runs it to the end.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from .decode import DecodeConfig, decode
from .displacement import vote_offset
from .model.embedding import SemiConvNet, pixel_coordinates
from .normalize import normalize


@dataclass(frozen=True)
class SegmentConfig:
    """How to run the model on one plane."""

    decode: DecodeConfig = field(default_factory=DecodeConfig)
    binary: bool = False  # input is a binary foreground mask (BBBC010 protocol)
    tile: int = 1024  # planes larger than this run in overlapping tiles
    overlap: int = 128  # tile overlap (px), each side keeps half
    keep_embedding: bool = True  # keep Psi (d, H, W) in the Result (for Inspect)


@dataclass(frozen=True)
class Progress:
    """A progress message: ``done`` of ``total`` units of ``stage``."""

    stage: str
    done: int
    total: int


@dataclass
class Result:
    """Everything the model says about one plane."""

    labels: np.ndarray  # (H, W) uint16
    instances: np.ndarray  # (N, H, W) bool, overlaps kept
    scores: np.ndarray  # (N,) float32
    seeds: np.ndarray  # (N, 2) int row, col of each instance's seed pixel
    foreground: np.ndarray  # (H, W) float32 probability
    seediness: np.ndarray  # (H, W) float32 predicted K(Psi_u, own centre)
    displacement: np.ndarray  # (2, H, W) float32 Phi^g in pixels, (dy, dx), common shift removed
    vote_offset: np.ndarray  # (2,) float32 px, the common shift of all votes (displacement.vote_offset)
    embedding: np.ndarray | None  # (d, H, W) float32 Psi (u_hat in coord_scale units)
    sigma: float  # kernel bandwidth, Psi units
    coord_scale: float  # pixels per Psi unit in the spatial dims


def _tiles(n: int, tile: int, overlap: int):
    """Start offsets along one axis so tiles of size ``tile`` cover 0..n with ``overlap``."""
    if n <= tile:
        return [0]
    step = tile - overlap
    starts = list(range(0, n - tile, step)) + [n - tile]
    return sorted(set(starts))


@torch.no_grad()
def predict_iter(model: SemiConvNet, x: np.ndarray, config: SegmentConfig) -> Iterator:
    """Run the network on a normalized ``(H, W)`` float32 plane, tile by tile.

    Yields Progress per tile, then a dict of torch tensors on the model's device:
    fg (H, W), seed (H, W), phi (d, H, W), psi (d, H, W). Tiles share one global coordinate
    frame (u_hat uses the tile's origin), so Psi stitches without seams; each tile keeps its
    centre, half the overlap is dropped at inner borders.
    """
    device = next(model.parameters()).device
    h, w = x.shape
    d = model.config.dim
    fg = torch.empty((h, w), device=device)
    seed = torch.empty((h, w), device=device)
    phi = torch.empty((d, h, w), device=device)
    rows, cols = _tiles(h, config.tile, config.overlap), _tiles(w, config.tile, config.overlap)
    total, half = len(rows) * len(cols), config.overlap // 2
    done = 0
    for r in rows:
        for c in cols:
            th, tw = min(config.tile, h), min(config.tile, w)
            patch = torch.from_numpy(np.ascontiguousarray(x[r : r + th, c : c + tw]))[None, None].to(device)
            out = model(patch, origin=(r, c))
            # region of this tile that it owns
            r0 = 0 if r == 0 else half
            c0 = 0 if c == 0 else half
            r1 = th if r + th >= h else th - half
            c1 = tw if c + tw >= w else tw - half
            sl = (slice(r + r0, r + r1), slice(c + c0, c + c1))
            fg[sl] = torch.sigmoid(out.fg_logit[0, 0, r0:r1, c0:c1])
            seed[sl] = torch.sigmoid(out.seed_logit[0, 0, r0:r1, c0:c1])
            phi[(slice(None),) + sl] = out.phi[0, :, r0:r1, c0:c1]
            done += 1
            yield Progress("network", done, total)
    psi = phi
    if model.config.semiconv:
        psi = phi + pixel_coordinates(h, w, d, model.config.coord_scale, device=device)
    yield {"fg": fg, "seed": seed, "phi": phi, "psi": psi}


def segment_iter(model: SemiConvNet, image: np.ndarray, config: SegmentConfig = SegmentConfig()
                 ) -> Iterator[Progress | Result]:
    """Segment one ``(H, W)`` plane. Yields Progress messages, then the Result (last item)."""
    x = normalize(image, binary=config.binary)
    yield Progress("normalize", 1, 1)
    out = None
    for item in predict_iter(model, x, config):
        if isinstance(item, Progress):
            yield item
        else:
            out = item
    sigma = model.sigma.item()
    dec = decode(out["psi"], out["fg"], out["seed"], sigma, config.decode)
    yield Progress("decode", 1, 1)
    scale = model.config.coord_scale
    phi_g = out["phi"][:2].cpu().numpy() * scale  # (dx, dy) in pixels
    displacement = np.stack([phi_g[1], phi_g[0]]).astype(np.float32)
    offset = vote_offset(displacement, dec.labels)
    yield Result(
        labels=dec.labels, instances=dec.instances, scores=dec.scores, seeds=dec.seeds,
        foreground=out["fg"].cpu().numpy(), seediness=out["seed"].cpu().numpy(),
        displacement=displacement - offset[:, None, None], vote_offset=offset,
        embedding=out["psi"].cpu().numpy() if config.keep_embedding else None,
        sigma=sigma, coord_scale=scale,
    )


def segment(model: SemiConvNet, image: np.ndarray, config: SegmentConfig = SegmentConfig()) -> Result:
    """Segment one ``(H, W)`` plane and return its :class:`Result`."""
    *_, result = segment_iter(model, image, config)
    return result
