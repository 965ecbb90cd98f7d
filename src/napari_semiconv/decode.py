"""Decoders: cluster the foreground pixels' embeddings Psi into worm instances.

All decoders work on the model's device in torch and return a :class:`Decoded` with a
non-overlapping ``(H, W)`` uint16 label image, an ``(N, H, W)`` bool instance stack (a pixel may
belong to two worms when the decoder is overlap-aware) and one score per instance.
"""

from dataclasses import dataclass, field

import numpy as np
import torch
from scipy import ndimage as ndi
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from .errors import SemiconvError
from .joining import Joiner, join_readings
from .losses import kernel, pairwise_distance
from .painting import Painter, paint
from .rescoring import FEATURES, Rescorer, instance_features

DECODERS = ("seeded", "meanshift", "kmeans")
CONCENTRATION_REACH = 0.6  # an instance's score counts its members within this many bandwidths of its median Psi
POOL_THRESHOLDS = (0.1, 0.3, 0.5, 0.7, 0.9, np.inf)  # joining probabilities whose joinings are candidates (pool);
# inf: the pieces alone


@dataclass(frozen=True)
class DecodeConfig:
    """Decoder choice and parameters."""

    name: str = "seeded"
    fg_threshold: float = 0.5  # foreground probability above which a pixel is clustered
    kernel_threshold: float = 0.4  # K_sigma(seed, u) above which u joins the seed's instance (chosen on
    # validation scenes: benchmarks/tune_decoder.py)
    min_size: int = 60  # instances smaller than this (pixels) are dropped
    overlap: bool = True  # seeded: a pixel may join several instances (crossing worms)
    min_seed: float = 0.2  # seeded: stop when the best remaining seed score is below this
    k: int = 0  # kmeans: number of clusters (required)
    meanshift_points: int = 4000  # meanshift: pixels sampled to find the modes
    meanshift_iters: int = 30
    max_instances: int = 1000
    merge_threshold: float = 0.3  # seeded: touching pieces whose centres have K above this merge (0 = off)
    min_score: float = 0.0  # instances scored below this are dropped (a piece of a split worm scores low)
    rescorer: Rescorer | None = None  # a learned score from each instance's shape and votes (see rescoring)
    features: bool = False  # compute each instance's rescoring features (Decoded.features) even without a rescorer
    joiner: Joiner | None = None  # a piece model's: joins its pieces across the overlaps that cut them (see joining)
    pool: bool = False  # with a joiner and a rescorer: the worms of several joinings are candidates and the
    # rescorer chooses among them (best first, no piece in two worms); without a rescorer: one joining, the joiner's
    candidates: bool = False  # with a joiner: every distinct worm of the pool's joinings is returned, none chosen
    # (what a rescorer is fitted on: benchmarks/fit_rescorer.py --pool)
    pixel_scale: float = 1.0  # image px per px of the images the model was trained on (its input_scale): the
    # rescorer reads sizes in the latter
    painter: Painter | None = None  # with count: which pixels of each crossing patch are each kept worm's (see painting)
    patch_reach: float = 12.0  # px at the model's input scale: a worm is given the pixels of a crossing patch (2+)
    # within this distance of its own, not the whole patch (a clump's patch spans many worms); 0 = whole patches

    def __post_init__(self):
        if self.name not in DECODERS:
            raise SemiconvError(f"unknown decoder {self.name!r}: choose one of {', '.join(DECODERS)}")
        if self.min_size < 1:
            raise SemiconvError(f"minimum worm size {self.min_size} px: give at least 1 (an instance needs a pixel)")
        if self.name == "kmeans" and self.k < 1:
            raise SemiconvError("the kmeans decoder needs the number of instances: set k >= 1")

    @property
    def chooses(self) -> bool:
        """Whether the rescorer chooses the worms from a pool of joinings (``pool`` with a rescorer, candidates not
        asked for)."""
        return self.pool and self.rescorer is not None and not self.candidates


THRESHOLDS = ("fg_threshold", "kernel_threshold", "merge_threshold", "min_score")  # chosen per model on validation images


def model_thresholds(model) -> dict:
    """The decoder thresholds stored with ``model`` (chosen on its validation images, or on the user's labels
    when fine-tuned): a dict of :data:`THRESHOLDS` keys, empty when the file has none."""
    stored = getattr(model, "metadata", {}).get("decode", {})
    return {k: float(v) for k, v in stored.items() if k in THRESHOLDS}


def model_decoding(model) -> dict:
    """The decoding stored with ``model``, to carry into a model made from it: :func:`model_thresholds` and, where
    set, ``pool`` (choose among the joinings' worms with the rescorer)."""
    pool = getattr(model, "metadata", {}).get("decode", {}).get("pool")
    return {**model_thresholds(model), **({"pool": bool(pool)} if pool is not None else {})}


def model_decode_config(model, **given) -> DecodeConfig:
    """The decoder settings for ``model``: ``given`` ones (None = not given), else its stored thresholds and
    rescorer, else the defaults."""
    meta = getattr(model, "metadata", {})
    stored = {**model_thresholds(model), "rescorer": Rescorer.from_metadata(meta.get("rescorer")),
              "joiner": Joiner.from_metadata(meta.get("joiner")), "painter": Painter.from_metadata(meta.get("painter")),
              "pool": bool(meta.get("decode", {}).get("pool", False)),
              "pixel_scale": float(model.config.input_scale) if hasattr(model, "config") else 1.0}
    return DecodeConfig(**{**stored, **{k: v for k, v in given.items() if v is not None}})


@dataclass
class Decoded:
    """Decoder output for one image."""

    labels: np.ndarray  # (H, W) uint16, 0 = background, one id per instance
    instances: np.ndarray  # (N, H, W) bool, may overlap
    scores: np.ndarray  # (N,) float32 in [0, 1]
    seeds: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int64))  # (N, 2) row, col
    features: np.ndarray = field(default_factory=lambda: np.zeros((0, len(FEATURES)), np.float32))  # (N, F) or
    # (0, F) when not computed (DecodeConfig.features, rescorer)


def decode(psi: torch.Tensor, fg_prob: torch.Tensor, seed: torch.Tensor, sigma: float | torch.Tensor,
           config: DecodeConfig = DecodeConfig(), count: torch.Tensor | None = None,
           shift: torch.Tensor | None = None, image: torch.Tensor | None = None) -> Decoded:
    """Cluster ``psi (d, H, W)`` over pixels with ``fg_prob (H, W)`` above threshold.

    ``seed (H, W)``, the seed map (predicted K(Psi_u, own centre)), ranks seeds (seeded) and scores
    instances; ``sigma`` is the kernel
    bandwidth in Psi units, one number or an ``(H, W)`` map (a worm grows with its own bandwidth: the
    mean over its pixels). ``count (H, W)`` int, worms per pixel (0, 1, 2+) where the model predicts
    it: with ``config.overlap`` only pixels counted 2+ join a second worm (without it, any pixel may).
    ``shift (2, H, W)`` (dy, dx) px, where each pixel's vote lands from it (None: unknown), places each
    instance's votes in the image for the instance features (see :mod:`.rescoring`). With ``config.joiner`` (a
    piece model's), the pieces found are joined across the crossings (:mod:`.joining`), which needs ``count`` and
    ``image (H, W)``, the normalized image.
    """
    d, h, w = psi.shape
    fg = (fg_prob > config.fg_threshold).reshape(-1)
    idx = fg.nonzero().squeeze(1)
    points = psi.reshape(d, -1)[:, idx].T.contiguous()  # (P, d)
    seeds = seed.reshape(-1)[idx]
    sig = (sigma.reshape(-1)[idx] if torch.is_tensor(sigma) and sigma.dim() == 2
           else torch.full((len(idx),), float(sigma), device=psi.device))  # (P,) bandwidths
    multi = None if count is None else count.reshape(-1)[idx] >= 2
    agreement = None  # (N,) the share of the pool's joinings that hold each worm (None: one joining or none)
    if len(idx) == 0:
        members = torch.zeros((0, 0), dtype=torch.bool, device=psi.device)
        seed_px = torch.zeros(0, dtype=torch.long, device=psi.device)
    elif config.name == "seeded":
        members, seed_px = _seeded(points, seeds, sig, config, multi)
        if config.merge_threshold > 0 and len(members) > 1:
            members, seed_px = _merge_touching(members, seed_px, points, seeds, idx, (h, w), sig,
                                               config.merge_threshold)
        reach = config.patch_reach * config.pixel_scale  # px in this image
        if config.joiner is not None and multi is not None and image is not None and len(members):
            members, seed_px, agreement = _join_pieces(members, seeds, idx, multi, (h, w), image, config.joiner,
                                                       POOL_THRESHOLDS if config.candidates or config.chooses else None,
                                                       reach)
        elif multi is not None and config.overlap and len(members):
            members = _join_crossings(members, idx, multi, (h, w), reach)
    elif config.name == "meanshift":
        members, seed_px = _meanshift(points, seeds, float(sig.median()), config)
    else:
        members, seed_px = _kmeans(points, seeds, config)
    ends = None if shift is None else (torch.stack([idx // w, idx % w], 1).float()
                                       + shift.reshape(2, -1)[:, idx].T)  # (P, 2) row, col px
    return _to_images(members, seed_px, points, seeds, fg_prob.reshape(-1)[idx], idx, sig, (h, w), config,
                      multi if config.name == "seeded" else None, ends, agreement, image)


def _seeded(points, seeds, sig, config, multi=None):
    """Seeded growth: best unassigned seed, its instance is K > threshold, repeat.

    sig : (P,) bandwidths; the instance's bandwidth is the mean over its members (refined with the
    centre). multi : (P,) bool, pixels that may join a second instance (None: any, if overlap).
    """
    log_t = -np.log(config.kernel_threshold)  # K > t  <=>  dist < sigma * log(1 / t)
    free = torch.ones(len(points), dtype=torch.bool, device=points.device)
    members, seed_px = [], []
    score = seeds.clone()
    sq = (points * points).sum(1)  # (P,) squared norms, for every growth's distances
    if multi is not None:  # a crossing pixel never seeds a worm (its vote may stop in the crossing)
        score[multi] = -1
    while len(members) < config.max_instances:
        score[~free] = -1
        best = int(torch.argmax(score))
        if score[best] < config.min_seed or free.sum() < config.min_size:
            break
        centre, radius = points[best : best + 1], sig[best] * log_t
        for _ in range(2):  # refine the centre and bandwidth as the means of its members
            inside = pairwise_distance(centre, points, sq)[0] < radius
            if not (inside & free).any():
                break
            centre = points[inside & free].mean(0, keepdim=True)
            radius = sig[inside & free].mean() * log_t
        inside = pairwise_distance(centre, points, sq)[0] < radius
        inside[best] = True
        new = inside & free
        free &= ~inside
        if (new if multi is None else new & ~multi).sum() < config.min_size:  # a worm is more than a crossing
            continue
        if not config.overlap:
            members.append(new)
        else:
            members.append(inside if multi is None else new | (inside & multi))
        seed_px.append(best)
    return _stack(members, len(points), points.device), torch.tensor(seed_px, device=points.device)


def _join_crossings(members, idx, multi, shape, reach: float = 0.0):
    """Give each crossing (a connected patch of pixels counted 2+) to every worm that touches it.

    A vote is one point, so a crossing pixel's vote lands on one of its worms only; but each worm that
    crosses there has members (pixels counted 1) on the patch's rim. members : (N, P) bool over the
    foreground pixels ``idx (P,)`` of an ``(H, W)`` image; multi : (P,) bool. With ``reach`` (px, > 0) a worm is given
    only the patch pixels within that distance of its own: where many worms lie across each other the 2+ pixels form
    one patch spanning the clump, which whole would make every worm there the size of the clump. Returns the new
    members.
    """
    h, w = shape
    grid = np.zeros(h * w, bool)
    grid[idx[multi].cpu().numpy()] = True
    patches, n = ndi.label(grid.reshape(h, w), np.ones((3, 3)))  # diagonal neighbours are one patch
    if n == 0:
        return members
    near = ndi.grey_dilation(patches, size=5).reshape(-1)  # a patch's id on its rim (2 px)
    worm, pixel = torch.nonzero(members & ~multi[None]).T.cpu().numpy()  # each worm's pixels counted 1
    rim = near[idx.cpu().numpy()[pixel]]
    table = np.zeros((n + 1, len(members)), bool)  # patch -> worms touching it
    table[rim[rim > 0], worm[rim > 0]] = True
    table[0] = False
    patch_of = torch.from_numpy(patches.reshape(-1)[idx.cpu().numpy()]).to(members.device)  # (P,)
    joins = torch.from_numpy(table).to(members.device)[patch_of].T & multi[None]  # (N, P)
    if reach > 0:
        joins &= _near(members & ~multi[None], joins, idx, shape, reach)
    return members | joins


def _near(own, given, idx, shape, reach: float) -> torch.Tensor:
    """``(N, P) bool``: the ``given`` pixels of each worm within ``reach`` px of its ``own`` ones (both (N, P) bool over
    the foreground pixels ``idx (P,)`` of an ``(H, W)`` image), one distance transform per worm over the box of its
    given pixels widened by the reach (an own pixel beyond it is farther than the reach from every given one)."""
    flat = idx.cpu().numpy()
    own_np, given_np = own.cpu().numpy(), given.cpu().numpy()
    keep = np.zeros_like(given_np)
    margin = int(np.ceil(reach)) + 1
    for k in np.nonzero(given_np.any(1) & own_np.any(1))[0]:  # a loop over worms, not pixels
        grow, gcol = np.divmod(flat[given_np[k]], shape[1])
        r0, c0 = grow.min() - margin, gcol.min() - margin
        outside = np.ones((grow.max() + margin - r0 + 1, gcol.max() + margin - c0 + 1), bool)
        orow, ocol = np.divmod(flat[own_np[k]], shape[1])
        inside = (orow >= r0) & (orow - r0 < outside.shape[0]) & (ocol >= c0) & (ocol - c0 < outside.shape[1])
        if not inside.any():
            continue
        outside[orow[inside] - r0, ocol[inside] - c0] = False
        keep[k, given_np[k]] = ndi.distance_transform_edt(outside)[grow - r0, gcol - c0] <= reach
    return torch.from_numpy(keep).to(own.device)


def _join_pieces(members, seeds, idx, multi, shape, image, joiner, pool=None, reach: float = 0.0):
    """A piece model's pieces joined into worms across the crossings (and, with the joiner's contact network, where they
    touch: :func:`.joining.join_readings`), each crossing
    then given to every worm that touches it (:func:`_join_crossings`). members : (N, P) bool over the foreground
    pixels ``idx (P,)``; seeds, multi : (P,); image : (H, W). ``pool`` (joining probabilities, None: the joiner's
    own) makes every distinct worm of the joinings at those probabilities a candidate (see :func:`_choose`); ``reach``
    as in :func:`_join_crossings`.
    Returns (K, P) members, the (K,) best-seeded pixel of each worm and (K,) float, the share of the joinings that
    hold it (1 with one joining: a worm that only weak joins make is held by few)."""
    pieces = members & ~multi[None]
    readings = join_readings(_grid(pieces, idx, shape).cpu().numpy(), _grid(multi[None], idx, shape)[0].cpu().numpy(),
                             image.cpu().numpy().astype(np.float32), joiner, pool or (joiner.threshold,))
    groups = np.concatenate([np.eye(r.max() + 1, dtype=bool)[r].T for r in readings])  # (K, N) pieces of each worm
    # a worm found at several probabilities is one candidate, held by that many joinings
    groups, held = (groups, np.ones(len(groups))) if pool is None else np.unique(groups, axis=0, return_counts=True)
    joined = torch.from_numpy(groups).to(members.device).float() @ pieces.float() > 0
    joined = _join_crossings(joined, idx, multi, shape, reach)
    best = torch.where(joined, seeds[None], -1.0).argmax(1)
    return joined, best, torch.from_numpy(held / len(readings)).float().to(members.device)


def _choose(members, scores, multi) -> torch.Tensor:
    """``(N,) bool`` the candidates kept from a pool (:func:`_join_pieces`): best ``scores`` first, each kept unless
    it shares a pixel not in a crossing (``multi (P,) bool``) with one kept before. members : (N, P) bool."""
    taken = torch.zeros(members.shape[1], dtype=torch.bool, device=members.device)
    keep = torch.zeros(len(members), dtype=torch.bool, device=members.device)
    own = members & ~multi[None]
    for i in torch.argsort(-scores).tolist():  # loop over candidates, best first
        if not (own[i] & taken).any():
            keep[i] = True
            taken |= own[i]
    return keep


def _instance_sigma(members, sig):
    """(N,) mean bandwidth over each instance's members."""
    m = members.float()
    return m @ sig / m.sum(1).clamp_min(1)


def _merge_touching(members, seed_px, points, seeds, idx, shape, sig, threshold):
    """Merge instances that touch in the image and whose mean embeddings have K > threshold.

    Pieces of one worm whose embedding spread exceeds the kernel radius touch each other and have
    close centres; two touching worms are held apart by the training margin. Connected components
    of the (few) touching pairs that merge; members (N, P) bool, seed_px (N,) -> merged versions.
    """
    h, w = shape
    m = members.float()
    centres = m @ points / m.sum(1, keepdim=True)
    owner = torch.zeros(h * w, dtype=torch.long, device=points.device)
    owner[idx] = torch.where(members.any(0), members.float().argmax(0) + 1, 0)
    owner = owner.reshape(h, w)
    pairs = torch.cat([torch.stack([owner[1:, :].reshape(-1), owner[:-1, :].reshape(-1)], 1),
                       torch.stack([owner[:, 1:].reshape(-1), owner[:, :-1].reshape(-1)], 1)])
    pairs = pairs[(pairs[:, 0] > 0) & (pairs[:, 1] > 0) & (pairs[:, 0] != pairs[:, 1])] - 1
    pairs = torch.unique(torch.sort(pairs, 1).values, dim=0)
    if len(pairs) == 0:
        return members, seed_px
    inst_sig = _instance_sigma(members, sig)
    k = kernel(torch.linalg.norm(centres[pairs[:, 0]] - centres[pairs[:, 1]], dim=1),
               (inst_sig[pairs[:, 0]] + inst_sig[pairs[:, 1]]) / 2)
    joined = pairs[k > threshold].cpu().numpy()
    roots = torch.from_numpy(connected_components(
        coo_matrix((np.ones(len(joined)), (joined[:, 0], joined[:, 1])), shape=(len(members),) * 2),
        directed=False)[1]).to(points.device)
    groups = torch.unique(roots)
    merged = torch.stack([members[roots == g].any(0) for g in groups])
    best = torch.stack([seed_px[roots == g][seeds[seed_px[roots == g]].argmax()] for g in groups])
    return merged, best


def _meanshift(points, seeds, sigma, config):
    """Mean shift with the Laplacian kernel on a sample, modes merged, pixels to nearest mode."""
    gen = torch.Generator(device="cpu").manual_seed(0)
    n = min(len(points), config.meanshift_points)
    sample = points[torch.randperm(len(points), generator=gen)[:n].to(points.device)]
    modes = sample.clone()
    for _ in range(config.meanshift_iters):
        k = kernel(pairwise_distance(modes, sample), sigma)
        modes = k @ sample / k.sum(1, keepdim=True)
    radius = -sigma * np.log(config.kernel_threshold)
    centres = []
    for m in modes:  # loop over the (few thousand) modes, merging close ones
        if not centres or pairwise_distance(m[None], torch.stack(centres))[0].min() >= radius:
            centres.append(m)
    return _nearest(points, seeds, torch.stack(centres))


def _kmeans(points, seeds, config, iters: int = 50):
    """k-means (k-means++ init, fixed seed) with ``config.k`` clusters."""
    gen = torch.Generator(device="cpu").manual_seed(0)
    k = min(config.k, len(points))
    centres = points[torch.randint(len(points), (1,), generator=gen).to(points.device)]
    for _ in range(k - 1):
        d2 = pairwise_distance(centres, points).min(0).values ** 2
        pick = torch.multinomial((d2 / d2.sum()).cpu(), 1, generator=gen).to(points.device)
        centres = torch.cat([centres, points[pick]])
    for _ in range(iters):
        assign = pairwise_distance(centres, points).argmin(0)
        onehot = torch.nn.functional.one_hot(assign, k).float()
        counts = onehot.sum(0)
        centres = torch.where(counts[:, None] > 0, onehot.T @ points / counts.clamp_min(1)[:, None],
                              centres)
    return _nearest(points, seeds, centres)


def _nearest(points, seeds, centres):
    """Hard assignment of points to the nearest centre; seed = best-scored member."""
    assign = pairwise_distance(centres, points).argmin(0)
    members = torch.nn.functional.one_hot(assign, len(centres)).T.bool()
    seed_px = torch.where(members, seeds[None], -1.0).argmax(1)
    return members, seed_px


def _stack(members, n, device):
    if not members:
        return torch.zeros((0, n), dtype=torch.bool, device=device)
    return torch.stack(members)


def _concentration(members, points, inst_sig, reach: float = CONCENTRATION_REACH):
    """(N,) float in [0, 1]: the fraction of each instance's members whose Psi lies within ``reach`` times
    the instance's bandwidth of its median Psi. A whole worm gathers its votes in one place; a piece of
    a split worm, a merger or a crossing's leftovers spread theirs, so this ranks instances for AP.
    members (N, P) bool; points (P, d); inst_sig (N,) the instances' bandwidths."""
    radius = reach * inst_sig
    out = torch.ones(len(members), device=points.device)
    for i, m in enumerate(members):  # loop over instances; each is vectorised over its members
        own = points[m]
        out[i] = (torch.linalg.norm(own - own.median(0).values, dim=1) < radius[i]).float().mean()
    return out


def _score_parts(members, seed_px, points, seeds, fg, inst_sig) -> tuple:
    """Each instance's seed score, mean foreground probability and :func:`_concentration` of its votes, each
    ``(N,)`` in [0, 1] (the score is their product). members (N, P) bool; seed_px (N,); points (P, d); seeds,
    fg (P,); inst_sig (N,) the instances' bandwidths."""
    m = members.float()
    return seeds[seed_px], (m @ fg) / m.sum(1), _concentration(members, points, inst_sig)


def _grid(values, idx, shape):
    """``(N, P)`` values over the foreground pixels ``idx (P,)`` -> ``(N, H, W)`` on the full grid (0 elsewhere)."""
    out = torch.zeros((len(values), shape[0] * shape[1]), dtype=values.dtype, device=values.device)
    out[:, idx] = values
    return out.reshape(len(values), *shape)


def _to_images(members, seed_px, points, seeds, fg, idx, sig, shape, config: DecodeConfig, multi=None,
               ends=None, agreement=None, image=None) -> Decoded:
    """(N, P) memberships over foreground pixels -> labels, stack and scores on the full grid; instances under
    ``config.min_size`` px or scored under ``config.min_score`` are dropped. The score is the product of
    :func:`_score_parts`, or the ``config.rescorer``'s probability from the instances' features (multi : (P,)
    bool, pixels counted 2+; ends : (P, 2) row, col px where each pixel's vote lands, or None; agreement : (N,) the
    share of the pool's joinings that hold each instance, or None). With ``config.painter``, ``multi`` and ``image (H, W)``
    (the normalized image) the kept instances' crossing pixels are painted (:func:`.painting.paint`)."""
    h, w = shape
    sizes = members.sum(1) if len(members) else torch.zeros(0, device=points.device)
    keep = sizes >= config.min_size
    members, seed_px = members[keep], seed_px[keep]
    agreement = None if agreement is None else agreement[keep]
    features = torch.zeros((0, len(FEATURES)), device=points.device)
    stack = None  # (N, H, W) bool, made before the cut only where the features need it
    if len(members):
        inst_sig = _instance_sigma(members, sig)
        parts = _score_parts(members, seed_px, points, seeds, fg, inst_sig)
        scores = parts[0] * parts[1] * parts[2]
        if config.rescorer is not None or config.features:
            stack = _grid(members, idx, shape)
            on = torch.ones((1, len(idx)), dtype=torch.bool, device=points.device)
            votes = None if ends is None else torch.stack([ends[m].median(0).values for m in members])  # (N, 2)
            features = instance_features(stack, _grid(on, idx, shape)[0],
                                         None if multi is None else _grid(multi[None], idx, shape)[0], parts, votes,
                                         config.pixel_scale, agreement)
            scores = scores if config.rescorer is None else config.rescorer(features)
        keep = scores >= config.min_score
        if config.chooses and multi is not None:
            keep &= _choose(members, scores, multi)
        members, seed_px, scores, inst_sig = members[keep], seed_px[keep], scores[keep], inst_sig[keep]
        if stack is not None:
            features, stack = features[keep], stack[keep]
    n = len(members)
    if n == 0:
        return Decoded(np.zeros(shape, np.uint16), np.zeros((0, h, w), bool), np.zeros(0, np.float32))
    if config.painter is not None and multi is not None and image is not None:
        grid = _grid(torch.stack([multi, torch.ones_like(multi)]), idx, shape).cpu().numpy()  # (2, H, W) patches, fg
        stack = torch.from_numpy(paint(_grid(members, idx, shape).cpu().numpy(), grid[0], grid[1],
                                       image.cpu().numpy(), config.painter, config.pixel_scale)).to(members.device)
        members = stack.reshape(n, -1)[:, idx]  # the painter decides only patch pixels (foreground ones): every worm
        # keeps its own pixels, at least min_size of them (a piece holds that many outside the patches)
    m = members.float()
    centres = m @ points / m.sum(1, keepdim=True)
    affinity = kernel(pairwise_distance(centres, points), inst_sig[:, None]) * m  # (N, P)
    # label image: each pixel goes to the member instance with the highest affinity
    owner = affinity.argmax(0)
    labelled = members.any(0)
    flat = torch.zeros(h * w, dtype=torch.int32, device=points.device)
    flat[idx[labelled]] = (owner[labelled] + 1).int()
    stack = _grid(members, idx, shape) if stack is None else stack
    seeds_rc = torch.stack([idx[seed_px] // w, idx[seed_px] % w], 1)
    return Decoded(flat.reshape(h, w).cpu().numpy().astype(np.uint16),
                   stack.cpu().numpy(),
                   scores.float().cpu().numpy(), seeds_rc.cpu().numpy(), features.cpu().numpy())
