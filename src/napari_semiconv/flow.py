"""The local form of the displacement: a flow along each worm's body toward its anchor.

A "flow" model predicts, at every pixel, the unit direction in which its worm's body leads to the
worm's anchor (a direction is a *local* property of the image, which a small net learns fast, where a
long-range offset is not). At decode time each foreground pixel follows the flow (Euler steps of one
pixel) and lands on its worm's anchor: its end point is its vote, so Psi = end point and
Phi^g = end point - u, clustered as for the other kinds. The training target is the steepest descent
of the *geodesic* distance to the anchor inside the worm's mask, so a path never leaves the worm,
also round a U-bend (omnipose makes the same point with distance-field flows for long bodies).
"""

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage as ndi
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra

from .anchors import medoid_anchors

_STEPS = ((0, 1, 1.0), (1, 0, 1.0), (1, 1, 2**0.5), (1, -1, 2**0.5))  # 8-neighbour graph, each pair once


def geodesic_distance(mask: np.ndarray, sources: np.ndarray, cost: np.ndarray | None = None) -> np.ndarray:
    """``(H, W)`` float64: the least summed ``cost`` of an 8-connected path inside ``mask`` to the nearest source.

    mask : (H, W) bool; sources : (S, 2) int (row, col), pixels of the mask (or one (row, col));
    cost : (H, W) float >= 0 per pixel (None = 1: the path length in px; a step costs its length times
    the mean cost of its two pixels). inf outside the mask and where the mask is cut off from the sources.
    """
    h, w = mask.shape
    cost = np.ones(mask.shape) if cost is None else cost
    ids = np.full((h, w), -1, np.int64)
    ids[mask] = np.arange(int(mask.sum()))
    src, dst, weight = [], [], []
    for dr, dc, length in _STEPS:
        rows, cols = slice(0, h - dr), slice(max(0, -dc), w - max(0, dc))
        rows2, cols2 = slice(dr, h), slice(max(0, dc), w - max(0, -dc))
        both = (ids[rows, cols] >= 0) & (ids[rows2, cols2] >= 0)
        src.append(ids[rows, cols][both])
        dst.append(ids[rows2, cols2][both])
        weight.append(length * (cost[rows, cols][both] + cost[rows2, cols2][both]) / 2)
    k = int(mask.sum())
    graph = coo_matrix((np.concatenate(weight), (np.concatenate(src), np.concatenate(dst))), shape=(k, k)).tocsr()
    out = np.full((h, w), np.inf)
    src_rc = np.asarray(sources, int).reshape(-1, 2)
    out[mask] = dijkstra(graph, directed=False, indices=ids[src_rc[:, 0], src_rc[:, 1]], min_only=True)
    return out


def _descent(distance: np.ndarray) -> np.ndarray:
    """``(2, H, W)`` float (dx, dy): the unit direction of steepest descent of ``distance (H, W)`` (inf =
    outside), from differences with the neighbours inside (one-sided at the edges); zero outside."""
    inside = np.isfinite(distance)
    d = np.pad(np.where(inside, distance, 0), 1)
    m = np.pad(inside, 1)
    grads = []
    for nxt, prv in (((slice(1, -1), slice(2, None)), (slice(1, -1), slice(None, -2))),  # x
                     ((slice(2, None), slice(1, -1)), (slice(None, -2), slice(1, -1)))):  # y
        vn, vp, has_n, has_p, c = d[nxt], d[prv], m[nxt], m[prv], d[1:-1, 1:-1]
        g = np.where(has_n & has_p, (vn - vp) / 2, np.where(has_n, vn - c, np.where(has_p, c - vp, 0.0)))
        grads.append(np.where(inside, -g, 0.0))
    g = np.stack(grads)
    return g / np.maximum(np.linalg.norm(g, axis=0), 1e-6)


SINK_CLEARANCE = 12  # px: a worm's sink lies at least this far from any overlap where the worm allows it


def _sink(own: np.ndarray, clearance: np.ndarray, near, reach: float) -> tuple[int, int]:
    """(row, col) of the pixel of ``own (h, w) bool`` nearest to ``near`` (row, col) px among those at least
    ``reach`` px (or as far as ``own`` reaches) from any overlap; clearance : (h, w) px to the nearest overlap.

    A sink beside a crossing sends the votes that overshoot it straight through the crossing onto the
    other worm: decoding the true flows, foreground and crossings of 20 validation scenes per style, sinks at
    the anchor score avS 0.54 / 0.48 (brightfield / fluorescence), sinks kept 12 px clear 0.74 / 0.66
    (benchmarks/flow_ceiling.py, docs/benchmarks.md)."""
    rows, cols = np.nonzero(own)
    room = np.minimum(clearance[rows, cols], reach)
    d2 = (rows - near[0]) ** 2 + (cols - near[1]) ** 2
    best = int(np.argmin(np.where(room >= room.max(), d2, np.inf)))
    return int(rows[best]), int(cols[best])


def flow_target(instances: np.ndarray, anchors: np.ndarray, edge_cost: float = 4.0,
                sink_clearance: float = 0.0, pair: bool = False, pieces: bool = False) -> np.ndarray:
    """``(2, H, W)`` float32 (dx, dy): the direction in which each worm's body leads to its anchor.

    instances : (N, H, W) bool, may overlap; anchors : (N, 2) float (row, col) px, possibly outside
    the image. Each worm's votes meet at a sink: its pixel nearest to the anchor that lies
    ``sink_clearance`` px clear of overlaps (see :func:`_sink`; 0, the default of the function and of
    ``ModelConfig.sink_clearance``: the pixel nearest to the anchor, as the shipped model was trained; ``SINK_CLEARANCE``
    raises the target's ceiling); a worm whose anchor is outside (cut by a crop) has one sink per
    visible piece, at the piece's medoid moved clear likewise. The direction is
    the steepest descent of a geodesic distance to the sink inside the worm whose step cost is
    ``1 + edge_cost * exp(1 - edt)`` (edt: the pixel's distance to the worm's edge), so paths run
    along the middle of the body and an Euler step never falls off an edge. Zero on the background,
    where two worms overlap (ambiguous: the loss skips those pixels) and at the sinks.
    With ``pair``, ``(4, H, W)``: two directions per pixel, both the worm's own on single-worm pixels, and
    on pixels in exactly two worms one of each worm's (in the order of ``instances``; zero in 3 or more).
    With ``pieces``, a worm's overlaps cut it into pieces and each piece has a sink of its own (at its medoid,
    moved clear likewise): no path crosses an overlap, so the direction at each pixel depends on nearby
    evidence only (which way the piece's ends lie), and the decoder joins the pieces across the overlaps
    (:mod:`.joining`).
    """
    h, w = instances.shape[1:]
    out = np.zeros((4 if pair else 2, h, w), np.float32)
    count = instances.sum(0)
    single, overlap = count == 1, count >= 2
    clearance = ndi.distance_transform_edt(~overlap) if overlap.any() else np.full((h, w), np.inf)  # px
    seen = np.zeros((h, w), bool)  # pixels of a worm already done (pair: the second worm on a crossing)
    for mask, (ar, ac) in zip(instances, np.asarray(anchors, float).reshape(-1, 2)):  # loop over worms
        rows, cols = np.nonzero(mask)
        if len(rows) == 0:
            continue
        r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
        box = mask[r0:r1, c0:c1]
        edt = ndi.distance_transform_edt(np.pad(box, 1))[1:-1, 1:-1]
        own = box & single[r0:r1, c0:c1]  # sinks lie off crossings, where the votes of two worms would meet
        own = own if own.any() else box
        room = clearance[r0:r1, c0:c1]
        if 0 <= ar < h and 0 <= ac < w and not pieces:
            sources = np.array([_sink(own, room, (ar - r0, ac - c0), sink_clearance)])
        else:
            parts, n = ndi.label(own if pieces else box, np.ones((3, 3)))
            parts = parts[None] == np.arange(1, n + 1)[:, None, None]
            parts = np.where((parts & own).any((1, 2))[:, None, None], parts & own, parts)
            sources = np.array([_sink(p, room, rc, sink_clearance) for p, rc in zip(parts, medoid_anchors(parts))])
        dist = geodesic_distance(own if pieces else box, sources, 1 + edge_cost * np.exp(1 - edt))
        sl = (slice(None), slice(r0, r1), slice(c0, c1))
        descent = _descent(dist)
        out[:2][sl] += np.where(single[r0:r1, c0:c1], descent, 0).astype(np.float32)
        if pair:
            two = (count[r0:r1, c0:c1] == 2) & box
            first = two & ~seen[r0:r1, c0:c1]
            out[:2][sl] += np.where(first, descent, 0).astype(np.float32)
            out[2:][sl] += np.where(single[r0:r1, c0:c1] | (two & ~first), descent, 0).astype(np.float32)
            seen[r0:r1, c0:c1] |= box
    return out


def model_flow_target(config, instances: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """The target a flow model of ``config`` (a ``ModelConfig``) is trained toward: :func:`flow_target` with the
    model's sink clearance, pieces where the model has them and, for paired flows, ``(4, H, W)``. instances : (N, H, W)
    bool; anchors : (N, 2)."""
    return flow_target(instances, anchors, sink_clearance=config.sink_clearance, pair=config.flow_pair,
                       pieces=config.flow_pieces)


SETTLE_EVERY = 10  # steps between checks for points that have stopped (at their sink)
SETTLE_PX = 1.5  # px: a point that moved less than this over the last SETTLE_EVERY steps stays where it is


def integrate(flow: torch.Tensor, start: torch.Tensor, steps: int, crossing: torch.Tensor | None = None,
              settle: bool = True) -> torch.Tensor:
    """Follow ``flow (2, H, W)`` (dx, dy px per step) from ``start (P, 2)`` (x, y) px for ``steps`` Euler steps.

    crossing : (H, W) float in [0, 1], the probability that two worms overlap at a pixel (None = 0):
    there the flow is ambiguous, so a point keeps its previous step in that proportion and goes
    straight through a crossing instead of turning onto the other worm. A ``(4, H, W)`` flow holds two
    directions per pixel (paired flows: where two worms cross, one of each): a point takes the one closer to
    its previous step, the way its own worm goes on. Fields are sampled bilinearly; points stay inside the
    image. ``settle``: every SETTLE_EVERY steps (from the second check on), points that moved less than SETTLE_PX
    since the last check (they sway about their sink) stop there, and the rest go on without them. Returns the
    ``(P, 2)`` end points (x, y) px.
    """
    h, w = flow.shape[-2:]
    p = start.clone()
    ends = p.clone()
    live = torch.arange(len(p), device=p.device)  # the points still moving, in p's order
    then = p.clone()
    norm = torch.tensor([2 / max(w - 1, 1), 2 / max(h - 1, 1)], device=flow.device)
    hi = torch.tensor([w - 1, h - 1], device=flow.device, dtype=p.dtype)
    field = flow[None] if crossing is None else torch.cat([flow, crossing[None]])[None]
    pair = len(flow) == 4

    def sample(q):
        return F.grid_sample(field, (q * norm - 1)[None, None], align_corners=True)[0, :, 0].T  # (P, 2 to 5)

    step = sample(p)[:, :2]
    for i in range(steps):  # loop over steps; each is vectorised over the points
        if settle and i % SETTLE_EVERY == 0 and i:
            moving = torch.hypot(*(p - then).T) >= SETTLE_PX if i > SETTLE_EVERY else torch.ones_like(live, dtype=bool)
            ends[live[~moving]] = p[~moving]
            live, p, step = live[moving], p[moving], step[moving]
            then = p.clone()
        p = torch.minimum((p + step).clamp_min(0), hi)
        f = sample(p)
        a = f[:, :2]
        if pair:
            b = f[:, 2:4]
            a = torch.where(((b - a) * step).sum(1, keepdim=True) > 0, b, a)
        step = a if crossing is None else (1 - f[:, -1:]) * a + f[:, -1:] * step
    ends[live] = p
    return ends


def vote_density(ends: torch.Tensor, shape: tuple[int, int], radius: int = 3) -> torch.Tensor:
    """``(P,)`` float: how many of the ``ends (P, 2)`` (x, y) px land within ``radius`` px (a box) of each one.

    shape : (H, W) of the image the points lie in.
    """
    h, w = shape
    xy = ends.round().long()
    hist = torch.zeros(h * w, device=ends.device)
    hist.index_add_(0, xy[:, 1] * w + xy[:, 0], torch.ones(len(xy), device=ends.device))
    k = 2 * radius + 1
    dens = F.avg_pool2d(hist.reshape(1, 1, h, w), k, stride=1, padding=radius, count_include_pad=True) * k * k
    return dens.reshape(-1)[xy[:, 1] * w + xy[:, 0]]


VOTE_FG = 0.2  # pixels with a foreground probability above this follow the flow (decoders threshold higher)
SEED_COUNT = 30.0  # votes gathered within a few px that make a seed score of 1 - 1/e


def flow_votes(flow: torch.Tensor, fg: torch.Tensor, crossing: torch.Tensor | None, steps: int,
               coord_scale: float, origin=(0, 0)) -> tuple[torch.Tensor, torch.Tensor]:
    """Psi and the seed map of a flow model: each foreground pixel's vote is where its flow leads.

    The vote moves one pixel per step along the flow's direction, times the foreground probability.
    flow : (2, H, W) (dx, dy), or (4, H, W) paired flows (see :func:`integrate`); fg, crossing : (H, W)
    probabilities of one worm or more / of two;
    origin : (row, col) of the tile in the plane. Returns psi ``(2, H, W)`` (x, y) in ``coord_scale``
    units of the plane (u_hat where fg <= VOTE_FG: those pixels stay put) and the seed map ``(H, W)``
    in [0, 1], growing with the number of votes that land beside the pixel's own.
    """
    h, w = fg.shape
    rows, cols = torch.nonzero(fg > VOTE_FG, as_tuple=True)
    start = torch.stack([cols, rows], 1).float()
    # the net's flow is a direction (its length shrinks where it is unsure): one pixel per step on the
    # worms, slowing to a stop where the foreground ends
    pairs = flow.reshape(-1, 2, h, w)  # (torch's norm over dim 0 is 100x slower on CPU)
    speed = fg / torch.hypot(pairs[:, 0], pairs[:, 1]).clamp_min(1e-3)  # (1 or 2, H, W)
    ends = integrate((pairs * speed[:, None]).reshape(-1, h, w), start, steps, crossing)
    shift = torch.tensor([origin[1], origin[0]], dtype=torch.float32, device=fg.device)
    ys = torch.arange(h, dtype=torch.float32, device=fg.device)[:, None].expand(h, w)
    xs = torch.arange(w, dtype=torch.float32, device=fg.device)[None, :].expand(h, w)
    psi = torch.stack([xs, ys]).clone()
    psi[:, rows, cols] = ends.T
    psi = (psi + shift[:, None, None]) / coord_scale
    seed = torch.zeros((h, w), device=fg.device)
    seed[rows, cols] = 1 - torch.exp(-vote_density(ends, (h, w)) / SEED_COUNT)
    return psi, seed
