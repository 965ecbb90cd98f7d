"""Painting the crossings: which pixels of an overlap patch belong to each worm that meets it.

Pixels counted 2+ (an overlap *patch*: a connected region of them) are given by the decoder to every worm that touches
the patch, within a reach of the worm's own pixels (:func:`.decode._join_crossings`). That rule gives a worm the
pixels of a third worm lying in the same clump and misses the far end of a long overlap. A small fully convolutional
net (the *painter*) looks at a square window centred on the patch, with the image, the worm's own pixels, the other
worms' pixels, the patch and the pixels the rule gave it (:data:`CHANNELS`), and says for each pixel of the patch
whether it is the worm's. With the true patch pixels, the shipped model's crossing worms would score avS +0.06
(docs/training/s32/crossing_pixels.log).
"""

import warnings
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage as ndi
from torch import nn

from .learned_parts import ThresholdedNet

CROP = 64  # px at the model's input scale: side of the painter's window
CHANNELS = ("image", "foreground", "own", "others", "patch", "patches", "given")


@dataclass(frozen=True)
class Windows:
    """The (worm, patch) pairs of one image that the painter decides, and where it looks for each."""

    worm: np.ndarray  # (M,) int: the worm (index into the stack)
    patch: np.ndarray  # (M,) int: the patch (label in ``labels``)
    corner: np.ndarray  # (M, 2) int row, col px: the window's top-left corner (may lie beyond the image)
    side: int  # px: the windows' side in the image
    labels: np.ndarray  # (H, W) int32 patch labels (0 = none)


def windows(stack: np.ndarray, multi: np.ndarray, scale: float = 1.0) -> Windows:
    """The pairs of ``stack (N, H, W) bool`` worms and the patches of ``multi (H, W) bool`` (pixels counted 2+) where the
    worm holds at least one of the patch's pixels, each with a window of side ``CROP * scale`` px (``scale``: image px
    per px of the model's training images) centred on the patch's bounding box."""
    labels, n = ndi.label(multi, np.ones((3, 3)))
    side = max(int(CROP * scale + 0.5), 8)
    if n == 0 or len(stack) == 0:
        return Windows(np.zeros(0, int), np.zeros(0, int), np.zeros((0, 2), int), side, labels.astype(np.int32))
    hold = np.zeros((len(stack), n + 1), bool)  # worm -> patches it holds pixels of
    worm, pixel = np.nonzero(stack.reshape(len(stack), -1)[:, labels.reshape(-1) > 0])
    hold[worm, labels.reshape(-1)[labels.reshape(-1) > 0][pixel]] = True
    worms, patches = np.nonzero(hold)
    boxes = ndi.find_objects(labels)
    centre = np.array([[(b[0].start + b[0].stop) / 2, (b[1].start + b[1].stop) / 2] for b in boxes])  # (n, 2)
    corner = np.floor(centre[patches - 1] - side / 2).astype(int)
    return Windows(worms, patches, corner, side, labels.astype(np.int32))


def _cut(field: np.ndarray, corner: np.ndarray, side: int) -> np.ndarray:
    """``(M, side, side)`` windows of ``field (H, W)`` at ``corner (M, 2)`` (row, col), zero beyond the image."""
    padded = np.pad(field, side)
    rows = corner[:, 0, None] + side + np.arange(side)  # (M, side)
    cols = corner[:, 1, None] + side + np.arange(side)
    return padded[rows[:, :, None], cols[:, None, :]]


def crops(stack: np.ndarray, multi: np.ndarray, fg: np.ndarray, image: np.ndarray, win: Windows) -> torch.Tensor:
    """``(M, C, CROP, CROP)`` float32 painter inputs (:data:`CHANNELS`) for each pair of ``win``: image (H, W) float32
    normalized, foreground fg (H, W) bool, the worm's own pixels (not counted 2+), the other worms' own pixels, the
    pair's patch, all patches (multi (H, W) bool) and the patch's pixels the worm holds now (``stack (N, H, W)
    bool``)."""
    own = stack & ~multi[None]
    owner = np.einsum("nhw,n->hw", own, np.arange(1, len(stack) + 1, dtype=np.int32))  # own pixels: one worm each
    cut = {name: _cut(f, win.corner, win.side) for name, f in
           (("image", image.astype(np.float32)), ("fg", fg), ("owner", owner), ("labels", win.labels), ("multi", multi))}
    held = _held(stack, win)
    mine = cut["owner"] == win.worm[:, None, None] + 1
    patch = cut["labels"] == win.patch[:, None, None]
    x = np.stack([cut["image"], cut["fg"], mine, (cut["owner"] > 0) & ~mine, patch, cut["multi"], held & patch], 1)
    return _resized(torch.from_numpy(x.astype(np.float32)))


def _held(stack: np.ndarray, win: Windows) -> np.ndarray:
    """``(M, side, side) bool``: each pair's worm of ``stack (N, H, W) bool`` in the pair's window."""
    if len(win.worm) == 0:
        return np.zeros((0, win.side, win.side), bool)
    return np.stack([_cut(stack[k], c[None], win.side)[0] for k, c in zip(win.worm, win.corner)])  # a loop over pairs


def _resized(x: torch.Tensor) -> torch.Tensor:
    """``(M, C, side, side)`` -> ``(M, C, CROP, CROP)`` (bilinear; unchanged when side is CROP)."""
    return x if x.shape[-1] == CROP else F.interpolate(x, size=(CROP, CROP), mode="bilinear", align_corners=True)


def targets(truth: np.ndarray, win: Windows) -> torch.Tensor:
    """``(M, CROP, CROP)`` float32: for each pair of ``win``, the pixels of its worm's true worm (``truth (M, H, W)
    bool``, one per pair) in the pair's window, as the painter sees them."""
    return _resized(torch.from_numpy(_held(truth, replace(win, worm=np.arange(len(win.worm))))[:, None]
                                     .astype(np.float32)))[:, 0]


class PainterNet(nn.Module):
    """``(M, C, S, S)`` inputs -> ``(M, S, S)`` logits that each pixel is the worm's (S a multiple of 4): a two-level
    U-net."""

    def __init__(self, width: int = 16):
        super().__init__()

        def conv(cin, cout, dilation=1):
            return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=dilation, dilation=dilation), nn.GroupNorm(4, cout),
                                 nn.ReLU())

        w = width
        self.enc1 = nn.Sequential(conv(len(CHANNELS), w), conv(w, w))
        self.enc2 = nn.Sequential(conv(w, 2 * w), conv(2 * w, 2 * w))
        self.mid = nn.Sequential(conv(2 * w, 2 * w, 2), conv(2 * w, 2 * w, 4))
        self.dec2 = conv(4 * w, 2 * w)
        self.dec1 = conv(3 * w, w)
        self.out = nn.Conv2d(w, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.enc1(x)
        b = self.enc2(F.max_pool2d(a, 2))
        c = self.mid(F.max_pool2d(b, 2))
        b = self.dec2(torch.cat([b, F.interpolate(c, scale_factor=2.0)], 1))
        return self.out(self.dec1(torch.cat([a, F.interpolate(b, scale_factor=2.0)], 1)))[:, 0]


@dataclass(frozen=True, eq=False)
class Painter(ThresholdedNet):
    """A trained :class:`PainterNet` and the probability above which a patch pixel is the worm's. Two painters are
    equal when their thresholds and weights are."""

    net: PainterNet
    threshold: float = 0.5

    @classmethod
    def from_metadata(cls, stored: dict | None) -> "Painter | None":
        """The painter stored in a model file's metadata (None, with a warning, when it is of another kind; None when
        there is none)."""
        if not stored:
            return None
        if tuple(stored.get("channels", ())) != CHANNELS:
            warnings.warn("the model file's crossing painter is of another kind (other input channels): crossings are "
                          "given by reach instead; refit it with benchmarks/fit_painter.py", stacklevel=2)
            return None
        net = PainterNet(int(stored["width"]))
        net.load_state_dict(stored["state_dict"])
        return cls(net.eval(), float(stored["threshold"]))

    def to_metadata(self) -> dict:
        return {"channels": list(CHANNELS), "threshold": self.threshold, "width": self.net.enc1[0][0].out_channels,
                "state_dict": self.weights()}


@torch.no_grad()
def paint(stack: np.ndarray, multi: np.ndarray, fg: np.ndarray, image: np.ndarray, painter: Painter,
          scale: float = 1.0, batch: int = 64) -> np.ndarray:
    """``stack (N, H, W) bool`` with each worm's pixels of each patch it holds (:func:`windows`) replaced by those the
    painter gives it; patch pixels beyond the window stay as they were. multi, fg : (H, W) bool; image : (H, W)
    float32 normalized; scale as in :func:`windows`."""
    win = windows(stack, multi, scale)
    if len(win.worm) == 0:
        return stack
    x = crops(stack, multi, fg, image, win)
    prob = torch.cat([painter.probability(x[i:i + batch]) for i in range(0, len(x), batch)])
    if win.side != CROP:
        prob = F.interpolate(prob[:, None], size=(win.side, win.side), mode="bilinear", align_corners=True)[:, 0]
    out = stack.copy()
    h, w = multi.shape
    for m, (k, p, (r0, c0)) in enumerate(zip(win.worm, win.patch, win.corner)):  # a loop over pairs (tens per image)
        rr, cc = slice(max(r0, 0), min(r0 + win.side, h)), slice(max(c0, 0), min(c0 + win.side, w))
        inside = win.labels[rr, cc] == p
        out[k, rr, cc][inside] = prob[m].numpy()[rr.start - r0:rr.stop - r0, cc.start - c0:cc.stop - c0][inside] \
            > painter.threshold
    return out
