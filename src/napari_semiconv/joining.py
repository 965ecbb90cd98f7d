"""Joining the pieces of a piece model (``ModelConfig.flow_pieces``) across the overlaps that cut them.

A piece model's votes never cross an overlap, so the decoder finds each worm as the pieces between the
overlaps it takes part in. At each overlap *patch* (a connected region of pixels counted 2+), every piece that
touches it has an *arm* there: its pixels within ``ARM_REACH`` px of the patch. A small CNN looks at a square
crop around the patch (the image, the two pieces of a candidate pair of arms, the patch, all pieces) together
with the pair's geometry (:data:`PAIR_FEATURES`) and gives the probability that the two arms belong to one worm.
Pairs are joined greedily by probability, each arm at most once; the decoder then gives each patch to every worm
that touches it (both worms of a crossing hold its pixels). With true pieces of 12 validation scenes this reaches avS 0.70
against 0.76 for the whole-worm flow target (docs/training/history.md, session 18).
"""

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage as ndi
from torch import nn

ARM_REACH = 18  # px: a piece's pixels this close to a patch form its arm(s) there
ARM_INNER = 6  # px: an arm's direction points from its contact to its pixels at least this far from the patch
ARM_CONTACT = 2  # px: an arm's pixels this close to the patch are its contact
MIN_ARM = 25  # px: smaller arms (slivers beside a patch) are not arms
CROP = 48  # px: side of the joiner's input crop
CROP_MARGIN = 36  # px: the crop is the patch's box widened by this
PAIR_FEATURES = ("opposite", "toward_a", "toward_b", "gap", "log_arm_min", "log_arm_max", "arms", "log_patch_area",
                 "log_area_min", "log_area_ratio")
CHANNELS = ("image", "piece_a", "piece_b", "patch", "pieces")


@dataclass(frozen=True)
class Arm:
    """Where a piece meets a patch."""

    piece: int
    contact: np.ndarray  # (2,) float row, col px: the mean of the arm's pixels within ARM_CONTACT px of the patch
    direction: np.ndarray  # (2,) float unit (row, col): from the contact out along the piece
    size: int  # px in the arm


@dataclass(frozen=True)
class Patch:
    """One overlap patch and the arms of the pieces that touch it."""

    label: int  # its id in the patch label image
    box: tuple  # (row slice, col slice) of its bounding box in the image
    area: int  # px
    arms: tuple  # of Arm


def patch_arms(pieces: np.ndarray, multi: np.ndarray) -> tuple[np.ndarray, list[Patch]]:
    """The overlap patches of ``multi (H, W) bool`` (pixels counted 2+) and the arms of ``pieces (N, H, W) bool``
    (which hold no pixel of ``multi``) at each: ``(H, W) int32`` patch labels (0 = none) and one :class:`Patch`
    per label. A piece may have two arms at one patch (it passes by it)."""
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
            for j in np.nonzero(sizes[1:] >= MIN_ARM)[0] + 1:
                arm = parts == j
                touch = np.argwhere(arm & (dist <= ARM_CONTACT))
                if len(touch) < 2:
                    continue
                outer = np.argwhere(arm & (dist >= ARM_INNER))
                contact = touch.mean(0)
                d = (outer if len(outer) else np.argwhere(arm)).mean(0) - contact
                arms.append(Arm(int(i), contact + (r0, c0), d / max(np.linalg.norm(d), 1e-6), int(sizes[j])))
        out.append(Patch(pid, box, int(patch.sum()), tuple(arms)))
    return labels.astype(np.int32), out


def pair_features(patch: Patch, areas: np.ndarray, median_area: float) -> list[tuple[int, int, np.ndarray]]:
    """``(arm a, arm b, (F,) float32 features)`` for each pair of arms of different pieces at ``patch``.

    areas : (N,) px of each piece; median_area : px. The features (:data:`PAIR_FEATURES`): how opposite the
    arms point; how well each arm points across the patch at the other's contact; the gap between the contacts
    over the patch's size; the arms' sizes; the number of arms there; the patch's area; the smaller piece's area
    against the image's median and the two pieces' area ratio (logs)."""
    rows = []
    arms = patch.arms
    for a in range(len(arms)):
        for b in range(a + 1, len(arms)):
            x, y = arms[a], arms[b]
            if x.piece == y.piece:
                continue
            gap = y.contact - x.contact
            length = np.linalg.norm(gap)
            unit = gap / max(length, 1e-6)
            across = (-x.direction @ unit, y.direction @ unit) if length > 1 else (0.0, 0.0)
            ax, ay = areas[x.piece], areas[y.piece]
            rows.append((a, b, np.array([-x.direction @ y.direction, *across, length / np.sqrt(patch.area),
                                         np.log(min(x.size, y.size)), np.log(max(x.size, y.size)), len(arms),
                                         np.log(patch.area), np.log(min(ax, ay) / median_area),
                                         abs(np.log(ax / ay))], np.float32)))
    return rows


def pair_crops(image: np.ndarray, pieces: np.ndarray, everywhere: np.ndarray, labels: np.ndarray, patch: Patch,
               pairs: list[tuple[int, int, np.ndarray]]) -> torch.Tensor:
    """``(M, 5, CROP, CROP)`` float32: for each pair of arms at ``patch``, the square around the patch's box
    (widened by CROP_MARGIN) resampled to CROP px: :data:`CHANNELS` (image (H, W) float32 normalized; pieces
    (N, H, W) bool; everywhere (H, W) bool, any piece (computed once per image); labels (H, W) the patch labels)."""
    rows, cols = patch.box
    side = max(rows.stop - rows.start, cols.stop - cols.start) + CROP_MARGIN
    centre = ((rows.start + rows.stop) / 2, (cols.start + cols.stop) / 2)
    h, w = image.shape
    # the fields are cut to the crop's window (with a pixel to spare for bilinear sampling): the same samples as
    # from the whole image, where a point beyond the window is beyond the image too
    r0, c0 = (max(int(np.floor(c - side / 2)) - 1, 0) for c in centre)
    r1, c1 = (min(int(np.ceil(c + side / 2)) + 2, n) for c, n in zip(centre, (h, w)))
    ys = torch.linspace(centre[0] - side / 2, centre[0] + side / 2, CROP) - r0
    xs = torch.linspace(centre[1] - side / 2, centre[1] + side / 2, CROP) - c0
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    grid = torch.stack([gx / max(c1 - c0 - 1, 1) * 2 - 1, gy / max(r1 - r0 - 1, 1) * 2 - 1], -1)[None]
    involved = sorted({patch.arms[i].piece for a, b, _ in pairs for i in (a, b)})
    window = np.s_[r0:r1, c0:c1]
    fields = torch.from_numpy(np.concatenate([image[window][None], pieces[involved, r0:r1, c0:c1],
                                              (labels[window] == patch.label)[None],
                                              everywhere[window][None]]).astype(np.float32))
    sampled = F.grid_sample(fields[None], grid, align_corners=True)[0]  # (2 + len(involved) + ..., CROP, CROP)
    slot = {p: 1 + k for k, p in enumerate(involved)}
    return torch.stack([sampled[[0, slot[patch.arms[a].piece], slot[patch.arms[b].piece], -2, -1]]
                        for a, b, _ in pairs])


class JoinerNet(nn.Module):
    """``(M, 5, CROP, CROP)`` crops and ``(M, F)`` pair features -> ``(M,)`` logits that the two arms are one worm."""

    def __init__(self, mean: torch.Tensor | None = None, scale: torch.Tensor | None = None):
        super().__init__()

        def block(cin, cout):
            return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.GroupNorm(4, cout), nn.ReLU(), nn.MaxPool2d(2))

        n = len(PAIR_FEATURES)
        self.conv = nn.Sequential(block(len(CHANNELS), 16), block(16, 32), block(32, 64), block(64, 64))
        self.head = nn.Sequential(nn.Linear(64 + n, 32), nn.ReLU(), nn.Linear(32, 1))
        self.register_buffer("mean", torch.zeros(n) if mean is None else mean.float())
        self.register_buffer("scale", torch.ones(n) if scale is None else scale.float())

    def forward(self, crops: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        z = self.conv(crops).mean((2, 3))
        return self.head(torch.cat([z, (features - self.mean) / self.scale], 1))[:, 0]


@dataclass(frozen=True, eq=False)
class Joiner:
    """A trained :class:`JoinerNet` and the probability above which two arms are joined. Two joiners are equal when
    their thresholds and weights are (a model file read twice gives equal joiners)."""

    net: JoinerNet
    threshold: float = 0.3

    @classmethod
    def from_metadata(cls, stored: dict | None) -> "Joiner | None":
        """The joiner stored in a model file's metadata (None when there is none or it is of another kind)."""
        if not stored or tuple(stored.get("features", ())) != PAIR_FEATURES:
            return None
        net = JoinerNet()
        net.load_state_dict(stored["state_dict"])
        return cls(net.eval(), float(stored["threshold"]))

    def __eq__(self, other) -> bool:
        if not isinstance(other, Joiner):
            return NotImplemented
        mine, theirs = self.net.state_dict(), other.net.state_dict()
        return self.threshold == other.threshold and all(torch.equal(v, theirs[k].to(v.device))
                                                         for k, v in mine.items())

    def __hash__(self) -> int:
        return hash(self.threshold)

    def to_metadata(self) -> dict:
        return {"features": list(PAIR_FEATURES), "threshold": self.threshold,
                "state_dict": {k: v.detach().cpu() for k, v in self.net.state_dict().items()}}


def candidate_pairs(pieces: np.ndarray, multi: np.ndarray, image: np.ndarray):
    """Every pair of arms of different pieces at each patch: ``(patch labels (H, W) int32, patches, pairs)``, where
    pairs is a list of ``(patch index, arm a, arm b, features (F,), crop (5, CROP, CROP))``; see :func:`join`."""
    labels, patches = patch_arms(pieces, multi)
    areas = pieces.reshape(len(pieces), -1).sum(1).astype(float).clip(1)
    median = float(np.median(areas)) if len(areas) else 1.0
    everywhere = pieces.any(0)
    pairs = []
    for k, patch in enumerate(patches):
        rows = pair_features(patch, areas, median)
        if rows:
            crops = pair_crops(image, pieces, everywhere, labels, patch, rows)
            pairs += [(k, a, b, x, c) for (a, b, x), c in zip(rows, crops)]
    return labels, patches, pairs


@torch.no_grad()
def join(pieces: np.ndarray, multi: np.ndarray, image: np.ndarray, joiner: Joiner) -> np.ndarray:
    """Join ``pieces (N, H, W) bool`` (none holds a pixel of ``multi``) across the patches of ``multi (H, W) bool``.

    image : (H, W) float32, the normalized image. Returns ``(N,) int`` the worm (0..K-1) of each piece; the patches
    themselves go to the worms that touch them afterwards (:func:`.decode._join_crossings`)."""
    _, patches, pairs = candidate_pairs(pieces, multi, image)
    parent = np.arange(len(pieces))

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    if pairs:
        device = next(joiner.net.parameters()).device
        prob = torch.sigmoid(joiner.net(torch.stack([p[4] for p in pairs]).to(device),
                                        torch.from_numpy(np.stack([p[3] for p in pairs])).to(device))).cpu().numpy()
        used = set()
        for m in np.argsort(-prob):  # loop over candidate pairs, likeliest first
            if prob[m] < joiner.threshold:
                break
            k, a, b = pairs[m][:3]
            pa, pb = patches[k].arms[a].piece, patches[k].arms[b].piece
            if (k, a) in used or (k, b) in used or root(pa) == root(pb):
                continue
            used |= {(k, a), (k, b)}
            parent[root(pa)] = root(pb)
    return np.unique([root(i) for i in range(len(pieces))], return_inverse=True)[1].reshape(-1)
