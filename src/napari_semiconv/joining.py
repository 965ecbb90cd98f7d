"""Joining the pieces of a piece model (``ModelConfig.flow_pieces``) across the overlaps that cut them.

A piece model's votes never cross an overlap, so the decoder finds each worm as the pieces between the
overlaps it takes part in. At each overlap *patch* (a connected region of pixels counted 2+), every piece that
touches it has an *arm* there: its pixels within ``ARM_REACH`` px of the patch. A small CNN looks at a square
crop centred on a candidate pair's two contacts (the image, the two pieces, the patch, all pieces) together with
the pair's geometry and looks (:data:`PAIR_FEATURES`) and gives the probability that the two arms belong to one worm.
Pieces may also touch outside the patches (a worm cut where its votes part, or two worms side by side): a joiner
with a *contact* network (:attr:`Joiner.contact_net`) treats each such contact (:func:`contacts`) as a patch of its
own, whose arm pairs that network judges.
Pairs are joined greedily by probability, each arm at most once; the decoder then gives each crossing patch to every
worm that touches it (both worms of a crossing hold its pixels). With true pieces of 12 validation scenes this reaches avS 0.70
against 0.76 for the whole-worm flow target (docs/training/history.md, session 18).
"""

import warnings
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage as ndi
from torch import nn

from .learned_parts import ThresholdedNet

ARM_REACH = 18  # px: a piece's pixels this close to a patch form its arm(s) there
ARM_INNER = 6  # px: an arm's direction points from its contact to its pixels at least this far from the patch
ARM_CONTACT = 2  # px: an arm's pixels this close to the patch are its contact
MIN_ARM = 25  # px: smaller arms (slivers beside a patch) are not arms
WIDTH_REACH = 32  # px: an arm's width is measured on its piece's pixels this far around the patch
CROP = 48  # px: side of the joiner's input crop
CROP_MARGIN = 48  # px: a pair's crop is the gap between its contacts widened by this
CONTACT_WIDTH = 2  # px: a piece's pixels this close to another piece are a contact
CONTACT_CLEAR = 4  # px: ... unless this close to a crossing patch (the pieces of a crossing meet at its corners)
MIN_CONTACT = 12  # px: smaller contacts are not joined across
PATH_POINTS = 16  # points along a pair's path through the patch (path_on_worms, path_in_patch)
PAIR_FEATURES = ("opposite", "toward_a", "toward_b", "gap", "log_arm_min", "log_arm_max", "arms", "log_patch_area",
                 "log_area_min", "log_area_ratio", "intensity_gap", "log_width_ratio", "path_on_worms",
                 "path_in_patch", "lead_a", "lead_b", "log_area_sum")
# the features' order with the two arms swapped (a pair's features seen from arm b)
SWAPPED = tuple(PAIR_FEATURES.index({"toward_a": "toward_b", "toward_b": "toward_a", "lead_a": "lead_b",
                                     "lead_b": "lead_a"}.get(f, f)) for f in PAIR_FEATURES)
CHANNELS = ("image", "piece_a", "piece_b", "patch", "pieces")


@dataclass(frozen=True)
class Arm:
    """Where a piece meets a patch."""

    piece: int
    contact: np.ndarray  # (2,) float row, col px: the mean of the arm's pixels within ARM_CONTACT px of the patch
    direction: np.ndarray  # (2,) float unit (row, col): from the contact out along the piece
    size: int  # px in the arm
    intensity: float  # mean normalized image over the arm's pixels at least ARM_INNER px from the patch
    width: float  # px: the 80th percentile of the piece's distance to its own edge over the arm (its half-width)


@dataclass(frozen=True)
class Patch:
    """One overlap patch and the arms of the pieces that touch it."""

    label: int  # its id in the patch label image
    box: tuple  # (row slice, col slice) of its bounding box in the image
    area: int  # px
    arms: tuple  # of Arm
    contact: bool = False  # a contact between pieces (:func:`contacts`), not a crossing


def patch_arms(pieces: np.ndarray, multi: np.ndarray, image: np.ndarray) -> tuple[np.ndarray, list[Patch]]:
    """The overlap patches of ``multi (H, W) bool`` (pixels counted 2+) and the arms of ``pieces (N, H, W) bool``
    (which hold no pixel of ``multi``) at each: ``(H, W) int32`` patch labels (0 = none) and one :class:`Patch`
    per label. image : (H, W) float32 normalized, for the arms' intensities. A piece may have two arms at one patch
    (it passes by it)."""
    labels, _ = ndi.label(multi, np.ones((3, 3)))
    h, w = multi.shape
    out = []
    for pid, box in enumerate(ndi.find_objects(labels), 1):  # loop over patches (tens per image)
        r0, r1 = max(box[0].start - ARM_REACH, 0), min(box[0].stop + ARM_REACH, h)
        c0, c1 = max(box[1].start - ARM_REACH, 0), min(box[1].stop + ARM_REACH, w)
        patch = labels[r0:r1, c0:c1] == pid
        dist = ndi.distance_transform_edt(~patch)
        near = (dist <= ARM_REACH) & ~multi[r0:r1, c0:c1]
        sub = pieces[:, r0:r1, c0:c1]
        arms = []
        for i in np.nonzero((sub & (dist <= ARM_CONTACT)).any((1, 2)))[0]:  # loop over the pieces touching it
            parts, m = ndi.label(sub[i] & near, np.ones((3, 3)))
            sizes = np.bincount(parts.ravel(), minlength=m + 1)
            inside = _inside(pieces[i], (r0, r1, c0, c1))
            for j in np.nonzero(sizes[1:] >= MIN_ARM)[0] + 1:
                arm = parts == j
                touch = np.argwhere(arm & (dist <= ARM_CONTACT))
                if len(touch) < 2:
                    continue
                outer = arm & (dist >= ARM_INNER)
                outer = outer if outer.any() else arm
                contact = touch.mean(0)
                d = np.argwhere(outer).mean(0) - contact
                arms.append(Arm(int(i), contact + (r0, c0), d / max(np.linalg.norm(d), 1e-6), int(sizes[j]),
                                float(image[r0:r1, c0:c1][outer].mean()), float(np.percentile(inside[arm], 80))))
        out.append(Patch(pid, box, int(patch.sum()), tuple(arms)))
    return labels.astype(np.int32), out


def _inside(piece: np.ndarray, window: tuple[int, int, int, int]) -> np.ndarray:
    """``(r1 - r0, c1 - c0)`` float px: each pixel's distance to the nearest pixel beyond ``piece (H, W) bool`` (the
    image's edge counts as beyond it) over ``window`` (r0, r1, c0, c1), computed on the window widened by WIDTH_REACH
    px: exact wherever that distance is at most WIDTH_REACH (far wider than any worm's half-width)."""
    h, w = piece.shape
    r0, r1, c0, c1 = window
    R0, R1, C0, C1 = max(r0 - WIDTH_REACH, 0), min(r1 + WIDTH_REACH, h), max(c0 - WIDTH_REACH, 0), min(c1 + WIDTH_REACH, w)
    pad = ((int(R0 == 0), int(R1 == h)), (int(C0 == 0), int(C1 == w)))  # the image's edge, as background
    dist = ndi.distance_transform_edt(np.pad(piece[R0:R1, C0:C1], pad))
    return dist[pad[0][0] + r0 - R0:pad[0][0] + r1 - R0, pad[1][0] + c0 - C0:pad[1][0] + c1 - C0]


def contacts(pieces: np.ndarray, multi: np.ndarray) -> np.ndarray:
    """``(H, W) bool``: where ``pieces (N, H, W) bool`` (which hold no pixel of ``multi (H, W) bool``, the pixels
    counted 2+) touch outside the crossings: each piece's pixels within CONTACT_WIDTH px (a square window) of another
    piece's, farther than CONTACT_CLEAR px from ``multi``, in connected contacts of MIN_CONTACT px or more."""
    labels = np.einsum("nhw,n->hw", pieces, np.arange(1, len(pieces) + 1, dtype=np.int32))
    size = 2 * CONTACT_WIDTH + 1
    low = ndi.minimum_filter(np.where(labels > 0, labels, np.iinfo(np.int32).max), size)
    band = (labels > 0) & (ndi.maximum_filter(labels, size) != low)
    if multi.any():
        band &= ndi.distance_transform_edt(~multi) > CONTACT_CLEAR
    parts, n = ndi.label(band, np.ones((3, 3)))
    return (np.bincount(parts.ravel(), minlength=n + 1) >= MIN_CONTACT)[parts] & band if n else band


def _path(x: Arm, y: Arm, n: int = PATH_POINTS) -> np.ndarray:
    """``(n, 2)`` float (row, col) px: a smooth (cubic Hermite) path that leaves arm x's contact into the patch and
    reaches arm y's contact heading out along y, as one worm passing through would."""
    t = np.linspace(0.1, 0.9, n)[:, None]
    length = max(np.linalg.norm(y.contact - x.contact), 1.0)
    return ((2 * t**3 - 3 * t**2 + 1) * x.contact + (t**3 - 2 * t**2 + t) * (-x.direction * length)
            + (-2 * t**3 + 3 * t**2) * y.contact + (t**3 - t**2) * (y.direction * length))


def pair_features(patch: Patch, areas: np.ndarray, median_area: float, labels: np.ndarray,
                  on_worms: np.ndarray) -> list[tuple[int, int, np.ndarray]]:
    """``(arm a, arm b, (F,) float32 features)`` for each pair of arms of different pieces at ``patch``.

    areas : (N,) px of each piece; median_area : px; labels : (H, W) int32 patch labels; on_worms : (H, W) bool
    foreground. The features (:data:`PAIR_FEATURES`): how opposite the arms point; how well each arm points across
    the patch at the other's contact; the gap between the contacts over the patch's size; the arms' sizes; the number
    of arms there; the patch's area; the smaller piece's area against the image's median and the two pieces' area
    ratio (logs); the gap between the arms' intensities and their widths' ratio (log); the share of a smooth path
    from one arm into the other (:func:`_path`) that runs on worms and in the patch; how much more opposite each arm
    is to the other than to its best rival there; the two pieces' summed area against the median (log)."""
    arms = patch.arms
    n = len(arms)
    if n < 2:
        return []
    dirs = np.stack([arm.direction for arm in arms])
    pieces = np.array([arm.piece for arm in arms])
    opposite = np.where(pieces[:, None] != pieces[None], -dirs @ dirs.T, -np.inf)  # (n, n)
    h, w = labels.shape
    rows = []
    for a in range(n):
        for b in range(a + 1, n):
            x, y = arms[a], arms[b]
            if x.piece == y.piece:
                continue
            gap = y.contact - x.contact
            length = np.linalg.norm(gap)
            unit = gap / max(length, 1e-6)
            across = (-x.direction @ unit, y.direction @ unit) if length > 1 else (0.0, 0.0)
            ax, ay = areas[x.piece], areas[y.piece]
            r, c = np.round(_path(x, y)).astype(int).T
            inside = (r >= 0) & (r < h) & (c >= 0) & (c < w)
            r, c = r.clip(0, h - 1), c.clip(0, w - 1)
            lead = [opposite[a, b] - np.delete(opposite[i], [i, j]).max(initial=-1.0)
                    for i, j in ((a, b), (b, a))]
            rows.append((a, b, np.array([
                opposite[a, b], *across, length / np.sqrt(patch.area), np.log(min(x.size, y.size)),
                np.log(max(x.size, y.size)), n, np.log(patch.area), np.log(min(ax, ay) / median_area),
                abs(np.log(ax / ay)), abs(x.intensity - y.intensity), abs(np.log(max(x.width, 0.5) / max(y.width, 0.5))),
                (on_worms[r, c] & inside).mean(), ((labels[r, c] == patch.label) & inside).mean(), *lead,
                np.log((ax + ay) / median_area)], np.float32)))
    return rows


def pair_crops(image: np.ndarray, owner: np.ndarray, labels: np.ndarray, patch: Patch,
               pairs: list[tuple[int, int, np.ndarray]]) -> torch.Tensor:
    """``(M, 5, CROP, CROP)`` float32: for each pair of arms at ``patch``, the square centred between its two
    contacts, of side their gap + CROP_MARGIN px, resampled to CROP px: :data:`CHANNELS` (image (H, W) float32
    normalized, bilinear; owner (H, W) int32, each pixel's piece + 1 (0 = none) and labels (H, W) int32, the patch
    labels, nearest)."""
    h, w = image.shape
    contacts = np.stack([np.stack([patch.arms[a].contact, patch.arms[b].contact]) for a, b, _ in pairs])  # (M, 2, 2)
    centre = contacts.mean(1)  # (M, 2) row, col
    side = np.linalg.norm(contacts[:, 1] - contacts[:, 0], axis=1) + CROP_MARGIN  # (M,)
    # the fields are cut to the window holding every crop (with a pixel to spare for bilinear sampling): the same
    # samples as from the whole image, where a point beyond the window is beyond the image too
    lo, hi = (centre - side[:, None] / 2).min(0), (centre + side[:, None] / 2).max(0)
    r0, c0 = (max(int(np.floor(v)) - 1, 0) for v in lo)
    r1, c1 = (min(int(np.ceil(v)) + 2, n) for v, n in zip(hi, (h, w)))
    steps = torch.linspace(-0.5, 0.5, CROP, dtype=torch.float64)
    ys = torch.from_numpy(centre[:, :1]) + torch.from_numpy(side[:, None]) * steps - r0  # (M, CROP)
    xs = torch.from_numpy(centre[:, 1:]) + torch.from_numpy(side[:, None]) * steps - c0
    grid = torch.stack([(xs / max(c1 - c0 - 1, 1) * 2 - 1)[:, None, :].expand(-1, CROP, -1),
                        (ys / max(r1 - r0 - 1, 1) * 2 - 1)[:, :, None].expand(-1, -1, CROP)], -1).float()
    window = np.s_[r0:r1, c0:c1]
    m = len(pairs)
    pixels = F.grid_sample(torch.from_numpy(image[window].astype(np.float32))[None, None].expand(m, -1, -1, -1),
                           grid, align_corners=True)[:, 0]
    ids = torch.from_numpy(np.stack([owner[window], np.where(labels[window] == patch.label, 1, 0)]).astype(np.float32))
    ids = F.grid_sample(ids[None].expand(m, -1, -1, -1), grid, mode="nearest", align_corners=True).round().long()
    a = torch.tensor([patch.arms[a].piece + 1 for a, _, _ in pairs])[:, None, None]
    b = torch.tensor([patch.arms[b].piece + 1 for _, b, _ in pairs])[:, None, None]
    return torch.stack([pixels, ids[:, 0] == a, ids[:, 0] == b, ids[:, 1] == 1, ids[:, 0] > 0], 1).float()


class JoinerNet(nn.Module):
    """``(M, 5, CROP, CROP)`` crops and ``(M, F)`` pair features -> ``(M,)`` logits that the two arms are one worm.

    A *relational* joiner also takes ``arms (M, 2) long``, the ids of each pair's two arms (:func:`pair_arms`): each
    pair's code is then told, summed over its two arms, the mean code of the other pairs at the arm (its rivals for
    it; 0 where there are none) and the elementwise maximum of the codes of all pairs there (itself included), so that
    it can weigh itself against them; what it is told does not depend on the arms' order or ids."""

    def __init__(self, mean: torch.Tensor | None = None, scale: torch.Tensor | None = None, relational: bool = False):
        super().__init__()

        def block(cin, cout):
            return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.GroupNorm(4, cout), nn.ReLU(), nn.MaxPool2d(2))

        n = len(PAIR_FEATURES)
        self.relational = relational
        self.conv = nn.Sequential(block(len(CHANNELS), 16), block(16, 32), block(32, 64), block(64, 64))
        self.head = nn.Sequential(nn.Linear(64 + n, 64), nn.ReLU(), nn.Linear(64, 1))
        if relational:
            self.rivals = nn.Sequential(nn.Linear(3 * 64, 64), nn.ReLU(), nn.Linear(64, 64))
        self.register_buffer("mean", torch.zeros(n) if mean is None else mean.float())
        self.register_buffer("scale", torch.ones(n) if scale is None else scale.float())

    def forward(self, crops: torch.Tensor, features: torch.Tensor, arms: torch.Tensor | None = None) -> torch.Tensor:
        z = self.conv(crops).mean((2, 3))
        h = self.head[1](self.head[0](torch.cat([z, (features - self.mean) / self.scale], 1)))  # (M, 64) codes
        if self.relational:
            if arms is None:
                raise ValueError("a relational joiner needs the ids of each pair's arms (joining.pair_arms)")
            h = h + self.rivals(torch.cat([h, *_rivals(h, arms)], 1))
        return self.head[2](h)[:, 0]


def _rivals(h: torch.Tensor, arms: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For pair codes ``h (M, C)`` and their arms ``(M, 2) long``: ``(M, C)`` the summed mean codes of the other pairs
    at each of a pair's two arms (0 where none) and ``(M, C)`` the summed elementwise maxima of the codes of all pairs
    at each arm."""
    arms = torch.unique(arms, return_inverse=True)[1]  # ids 0..A-1
    a, b = arms[:, 0], arms[:, 1]
    n = int(arms.max()) + 1 if len(arms) else 0
    ends = torch.cat([a, b])
    both = torch.cat([h, h])
    total = h.new_zeros(n, h.shape[1]).index_add_(0, ends, both)
    count = h.new_zeros(n).index_add_(0, ends, torch.ones_like(ends, dtype=h.dtype))
    top = h.new_full((n, h.shape[1]), -torch.inf).scatter_reduce_(0, ends[:, None].expand(-1, h.shape[1]), both, "amax")
    mean = sum((total[e] - h) / (count[e] - 1).clamp_min(1)[:, None] for e in (a, b))
    return mean, top[a] + top[b]


@dataclass(frozen=True, eq=False)
class Joiner(ThresholdedNet):
    """A trained :class:`JoinerNet` and the probability above which two arms are joined; optionally a second one for
    the pairs at contacts (:func:`contacts`; None: pieces are joined across crossings only). Two joiners are equal when
    their thresholds and weights are (a model file read twice gives equal joiners)."""

    net: JoinerNet
    threshold: float = 0.3
    contact_net: JoinerNet | None = None

    def __eq__(self, other) -> bool:
        same = super().__eq__(other)
        if same is not True:
            return same
        if (self.contact_net is None) != (other.contact_net is None):
            return False
        return self.contact_net is None or self.contact == other.contact

    __hash__ = ThresholdedNet.__hash__

    def __post_init__(self):
        if self.contact_net is not None and self.contact_net.relational:
            raise ValueError("a joiner's contact network is a plain JoinerNet (relational=False)")

    @property
    def contact(self) -> "Joiner | None":
        """The contact network as a joiner of its own (at this joiner's threshold), or None."""
        return None if self.contact_net is None else Joiner(self.contact_net, self.threshold)

    @classmethod
    def from_metadata(cls, stored: dict | None) -> "Joiner | None":
        """The joiner stored in a model file's metadata (None, with a warning, when it is of an older kind; None when
        there is none)."""
        if not stored:
            return None
        if tuple(stored.get("features", ())) != PAIR_FEATURES:
            warnings.warn("the model file's joiner is of an older kind (other pair features): its pieces are not "
                          "joined across crossings; refit it with benchmarks/fit_joiner.py", stacklevel=2)
            return None
        net = JoinerNet(relational=bool(stored.get("relational", False)))
        net.load_state_dict(stored["state_dict"])
        contact = None
        if stored.get("contact_state_dict"):
            contact = JoinerNet()
            contact.load_state_dict(stored["contact_state_dict"])
            contact.eval()
        return cls(net.eval(), float(stored["threshold"]), contact)

    def to_metadata(self) -> dict:
        contact = {"contact_state_dict": self.contact.weights()} if self.contact_net is not None else {}
        return {"features": list(PAIR_FEATURES), "threshold": self.threshold, "relational": self.net.relational,
                "state_dict": self.weights(), **contact}


def candidate_pairs(pieces: np.ndarray, multi: np.ndarray, image: np.ndarray, touching: bool = False):
    """Every pair of arms of different pieces at each patch: ``(patch labels (H, W) int32, patches, pairs)``, where
    pairs is a list of ``(patch index, arm a, arm b, features (F,), crop (5, CROP, CROP))``; see :func:`join`.
    The pieces share no pixel (the seeded decoder gives a second worm only pixels of ``multi``). ``touching``: the
    :func:`contacts` are patches too (``Patch.contact``; their pixels left out of the pieces while the arms are found
    and the pairs described)."""
    band = contacts(pieces, multi) if touching else None
    band = band if band is not None and band.any() else None
    if band is not None:
        pieces, multi = pieces & ~band[None], multi | band
    labels, patches = patch_arms(pieces, multi, image)
    if band is not None:
        at = np.bincount(labels[band], minlength=len(patches) + 1) > 0
        patches = [replace(p, contact=bool(at[p.label])) for p in patches]
    areas = pieces.reshape(len(pieces), -1).sum(1).astype(float).clip(1)
    median = float(np.median(areas)) if len(areas) else 1.0
    owner = np.einsum("nhw,n->hw", pieces, np.arange(1, len(pieces) + 1, dtype=np.int32))  # pieces share no pixel
    on_worms = (owner > 0) | multi
    pairs = []
    for k, patch in enumerate(patches):
        rows = pair_features(patch, areas, median, labels, on_worms)
        if rows:
            crops = pair_crops(image, owner, labels, patch, rows)
            pairs += [(k, a, b, x, c) for (a, b, x), c in zip(rows, crops)]
    return labels, patches, pairs


def pair_arms(patches: list[Patch], pairs: list) -> torch.Tensor:
    """``(M, 2) long``: ids of the two arms of each candidate pair (as :func:`candidate_pairs` gives them), one id per
    arm of each patch."""
    first = np.cumsum([0] + [len(p.arms) for p in patches])
    return torch.tensor([[first[k] + a, first[k] + b] for k, a, b, *_ in pairs], dtype=torch.long).reshape(-1, 2)


def pair_probabilities(joiner: Joiner, patches: list[Patch], pairs: list) -> np.ndarray:
    """``(M,) float32``: the joiner's probability that each candidate pair's arms (as :func:`candidate_pairs` gives
    them) are one worm, by its contact network at contacts; a relational joiner is given the pairs' arms."""
    at_contact = np.array([patches[p[0]].contact for p in pairs], bool)
    if at_contact.any() and joiner.contact_net is None:
        raise ValueError("pairs at contacts need a joiner with a contact network (Joiner.contact_net)")
    prob = np.zeros(len(pairs), np.float32)
    for judge, which in ((joiner, ~at_contact), (joiner.contact, at_contact)):  # crossings, then contacts
        chosen = [p for p, w in zip(pairs, which) if w]
        if not chosen:
            continue
        crops, feats = torch.stack([p[4] for p in chosen]), torch.from_numpy(np.stack([p[3] for p in chosen]))
        rest = (pair_arms(patches, chosen),) if judge.net.relational else ()
        prob[which] = judge.probability(crops, feats, *rest).numpy()
    return prob


def join_in_order(n: int, patches: list[Patch], pairs: list, order) -> np.ndarray:
    """Join ``n`` pieces by the candidate ``pairs`` (as :func:`candidate_pairs` gives them) taken in ``order`` (indices
    into pairs, first joined first), each arm at most once and never two pieces already in one worm. Returns ``(n,)
    int`` the worm (0..K-1) of each piece."""
    parent = np.arange(n)

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    used = set()
    for m in order:  # loop over the chosen candidate pairs
        k, a, b = pairs[m][:3]
        pa, pb = patches[k].arms[a].piece, patches[k].arms[b].piece
        if (k, a) in used or (k, b) in used or root(pa) == root(pb):
            continue
        used |= {(k, a), (k, b)}
        parent[root(pa)] = root(pb)
    return np.unique([root(i) for i in range(n)], return_inverse=True)[1].reshape(-1)


@torch.no_grad()
def join_readings(pieces: np.ndarray, multi: np.ndarray, image: np.ndarray, joiner: Joiner,
                  thresholds: tuple) -> np.ndarray:
    """Join ``pieces (N, H, W) bool`` (none holds a pixel of ``multi``) across the patches of ``multi (H, W) bool``
    (and, with the joiner's contact network, across their :func:`contacts`) once per joining probability in
    ``thresholds`` (the joiner's network runs once). image : (H, W) float32, the
    normalized image. Returns ``(T, N) int``: for each threshold, the worm (0..K-1) of each piece; the patches
    themselves go to the worms that touch them afterwards (:func:`.decode._join_crossings`)."""
    _, patches, pairs = candidate_pairs(pieces, multi, image, touching=joiner.contact_net is not None)
    prob = pair_probabilities(joiner, patches, pairs)
    order = np.argsort(-prob)  # likeliest first
    return np.stack([join_in_order(len(pieces), patches, pairs, order[prob[order] >= t]) for t in thresholds])


def join(pieces: np.ndarray, multi: np.ndarray, image: np.ndarray, joiner: Joiner) -> np.ndarray:
    """:func:`join_readings` at the joiner's own threshold: ``(N,) int`` the worm (0..K-1) of each piece."""
    return join_readings(pieces, multi, image, joiner, (joiner.threshold,))[0]
