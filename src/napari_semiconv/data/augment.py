"""Augmentation and cropping of (image, instances, valid, anchors) training samples, in torch."""

import numpy as np
import torch
import torch.nn.functional as F


def crop_resize(image: np.ndarray, instances: np.ndarray, valid: np.ndarray | None, anchors: np.ndarray,
                rng, crop: int, zoom: float = 1.0):
    """Random ``crop x crop`` window after zooming by ``zoom`` (>1 magnifies), centred on a random worm.

    image : (H, W) float32 normalized; instances : (N, H, W) bool; valid : (H, W) bool or None;
    anchors : (N, 2) float (row, col) px. The window holds a random worm's anchor (no empty crops
    where there are worms). Smaller inputs are zero-padded (padding is marked invalid). Returns torch
    tensors image (crop, crop) float32, instances (M, crop, crop) bool (empty ones dropped), valid
    bool, anchors (M, 2) float32 in the crop's pixels (outside it for worms the crop cuts).
    """
    h, w = image.shape
    src = max(8, round(crop / zoom))
    r_hi, c_hi = max(h - src, 0), max(w - src, 0)
    inside = np.flatnonzero((anchors[:, 0] >= 0) & (anchors[:, 0] < h) & (anchors[:, 1] >= 0)
                            & (anchors[:, 1] < w)) if len(anchors) else []
    if len(inside):  # the worm's anchor anywhere in the window's middle 80 %
        ar, ac = anchors[rng.choice(inside)]
        r = int(np.clip(ar - src * rng.uniform(0.1, 0.9), 0, r_hi))
        c = int(np.clip(ac - src * rng.uniform(0.1, 0.9), 0, c_hi))
    else:
        r, c = int(rng.integers(0, r_hi + 1)), int(rng.integers(0, c_hi + 1))
    sl = (slice(r, r + src), slice(c, c + src))
    img = torch.from_numpy(np.ascontiguousarray(image[sl], dtype=np.float32))
    ins = torch.from_numpy(np.ascontiguousarray(instances[(slice(None),) + sl]))
    val = torch.ones(img.shape, dtype=torch.bool) if valid is None else torch.from_numpy(
        np.ascontiguousarray(valid[sl]))
    ph, pw = src - img.shape[0], src - img.shape[1]
    stack = torch.cat([img[None], ins.float(), val[None].float()])
    stack = F.pad(stack, (0, pw, 0, ph))
    if src != crop:
        stack = F.interpolate(stack[None], size=(crop, crop), mode="nearest")[0]
        stack[0] = F.interpolate(F.pad(img, (0, pw, 0, ph))[None, None], size=(crop, crop),
                                 mode="bilinear", align_corners=False)[0, 0]
    img, ins, val = stack[0], stack[1:-1] > 0.5, stack[-1] > 0.5
    # pixel centres map as (i + 0.5) * crop / src - 0.5
    anc = (torch.as_tensor(np.asarray(anchors, np.float32)).reshape(-1, 2) - torch.tensor([r, c]) + 0.5) \
        * (crop / src) - 0.5
    keep = ins.flatten(1).any(1)
    return img, ins[keep], val, anc[keep]


def augment(img: torch.Tensor, ins: torch.Tensor, val: torch.Tensor, anc: torch.Tensor, rng,
            binary_prob: float = 0.0):
    """Flips, 90-degree rotations, intensity (gain, offset, gamma, inversion, noise, blur).

    img : (S, S) float32 normalized (square); ins : (N, S, S) bool; val : (S, S) bool; anc : (N, 2)
    float32 (row, col) anchors, moved with the pixels. With probability ``binary_prob`` the image is
    replaced by the binary foreground (BBBC010 mode).
    """
    k = int(rng.integers(4))
    flip = bool(rng.integers(2))
    last = img.shape[-1] - 1

    def geo(t):
        t = torch.rot90(t, k, dims=(-2, -1))
        return torch.flip(t, dims=(-1,)) if flip else t

    img, ins, val = geo(img), geo(ins), geo(val)
    for _ in range(k):  # rot90 (counter-clockwise): (r, c) -> (S - 1 - c, r)
        anc = torch.stack([last - anc[:, 1], anc[:, 0]], 1)
    if flip:
        anc = torch.stack([anc[:, 0], last - anc[:, 1]], 1)
    if rng.random() < binary_prob:
        return (ins.any(0) if len(ins) else torch.zeros_like(val)).float(), ins, val, anc
    img = img.clamp(-0.5, 2.0)
    if rng.random() < 0.2:
        img = 1 - img
    gamma = float(np.exp(rng.uniform(-0.4, 0.4)))
    img = img.clamp_min(0) ** gamma * rng.uniform(0.6, 1.4) + rng.uniform(-0.2, 0.2)
    if rng.random() < 0.3:
        sigma = rng.uniform(0.5, 1.5)
        x = torch.arange(-3, 4, dtype=torch.float32)
        g = torch.exp(-(x**2) / (2 * sigma**2))
        g = (g / g.sum())
        img = F.conv2d(F.pad(img[None, None], (3, 3, 3, 3), mode="replicate"),
                       (g[:, None] * g[None, :])[None, None])[0, 0]
    gen = torch.Generator().manual_seed(int(rng.integers(2**31)))
    img = img + torch.randn(img.shape, generator=gen) * rng.uniform(0, 0.05)
    return img.contiguous(), ins.contiguous(), val.contiguous(), anc
