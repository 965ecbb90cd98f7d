"""The anchored model: anchors on the worm, its loss terms, its decoding of crossing worms."""

import numpy as np
import torch

from napari_semiconv.anchors import medoid_anchors
from napari_semiconv.data.augment import augment, crop_resize
from napari_semiconv.data.synthetic import make_scene
from napari_semiconv.decode import DecodeConfig, decode
from napari_semiconv.losses import AnchorWeights, anchor_losses, lovasz_hinge
from napari_semiconv.model import build_model
from napari_semiconv.model.embedding import ModelConfig, pixel_coordinates


def _u_worm(h=80, w=80):
    """(H, W) bool: a U-shaped worm, 8 px thick; its centroid lies in the gap between the arms."""
    yy, xx = np.mgrid[:h, :w]
    r = np.hypot(yy - 20, xx - 40)
    arc = (r > 22) & (r < 30) & (yy >= 20)
    arms = ((np.abs(xx - 14) < 4) | (np.abs(xx - 66) < 4)) & (yy < 20) & (yy > 0)
    return arc | arms


def test_medoid_anchor_of_a_u_shaped_worm_lies_on_the_worm():
    worm = _u_worm()
    centroid = np.argwhere(worm).mean(0).round().astype(int)
    assert not worm[tuple(centroid)]  # the centroid is off the body
    (r, c), = medoid_anchors(worm[None])
    assert worm[int(r), int(c)]
    assert r > 20 and abs(c - 40) < 15  # on the bend, not on an arm


def test_synthetic_anchors_lie_on_their_worms():
    scene = make_scene(7)
    rc = np.round(scene.anchors).astype(int)
    inside = (rc[:, 0] >= 0) & (rc[:, 0] < scene.image.shape[0]) & (rc[:, 1] >= 0) & (rc[:, 1] < scene.image.shape[1])
    assert inside.sum() >= len(rc) // 2
    on = scene.instances[np.flatnonzero(inside), rc[inside, 0], rc[inside, 1]]
    assert on.all()


def test_anchors_follow_crops_rotations_and_flips(rng):
    scene = make_scene(11)
    # a one-pixel "worm" at each anchor, so each moved anchor can be checked against the moved pixels
    marks = np.zeros_like(scene.instances)
    rc = np.round(scene.anchors).astype(int)
    ok = (rc[:, 0] >= 0) & (rc[:, 0] < marks.shape[1]) & (rc[:, 1] >= 0) & (rc[:, 1] < marks.shape[2])
    marks, anchors = marks[ok], rc[ok].astype(np.float32)
    marks[np.arange(len(marks)), rc[ok, 0], rc[ok, 1]] = True
    for _ in range(8):
        img, ins, val, anc = crop_resize(scene.image.astype(np.float32), marks, None, anchors, rng, 128)
        img, ins, val, anc = augment(img, ins, val, anc, rng)
        assert len(ins) >= 1  # the crop is centred on a worm's anchor
        for mask, a in zip(ins, anc):
            assert np.allclose(np.argwhere(mask.numpy()).mean(0), a.numpy(), atol=0.6)


def test_lovasz_of_perfect_soft_mask_is_zero_and_of_empty_one_high():
    labels = torch.zeros(1, 100)
    labels[0, 20:50] = 1
    perfect = 2 * labels - 1  # logits = 2K - 1 with K = 1 inside, 0 outside
    empty = -torch.ones(1, 100)
    assert lovasz_hinge(perfect, labels).item() < 1e-6
    assert lovasz_hinge(empty, labels).item() > 0.9


def _crossing(h=60, w=60):
    """Two straight worms crossing at the image centre: (2, H, W) bool and their anchors (2, 2) row, col."""
    ins = np.zeros((2, h, w), bool)
    ins[0, 26:34, 5:55] = True  # horizontal
    ins[1, 5:55, 26:34] = True  # vertical
    return torch.from_numpy(ins), torch.tensor([[30.0, 12.0], [12.0, 30.0]])


def test_crossing_pixel_counts_in_both_worms():
    ins, anchors = _crossing()
    scale = 16.0
    psi = pixel_coordinates(60, 60, 4, scale).clone().requires_grad_(True)
    count_logit = torch.zeros(3, 60, 60, requires_grad=True)
    weights = AnchorWeights(stride=1, mask=0, seed=0, smooth=0)  # the count and anchor terms only
    out = anchor_losses(psi, count_logit, torch.zeros(60, 60), torch.full((60, 60), 0.5), ins, anchors, scale,
                        weights)
    out["total"].backward()
    # the count head is pushed toward "2+" at the crossing and "1" on a single worm
    assert count_logit.grad[2, 30, 30] < 0 and count_logit.grad[1, 30, 30] > 0
    assert count_logit.grad[1, 30, 50] < 0
    # the crossing pixel is pulled toward both anchors (x by the horizontal worm, y by the vertical one),
    # a pixel of one worm toward its own only
    gx, gy = psi.grad[:2, 30, 30]
    assert gx > 0 and gy > 0 and torch.isclose(gx, gy, rtol=0.05)
    gx, gy = psi.grad[:2, 30, 50]
    assert gx > 0 and abs(gy) < 1e-6
    for key in ("count", "anchor", "mask", "seed", "smooth"):
        assert torch.isfinite(out[key])


def test_decoding_two_crossing_worms_shares_the_crossing_pixels():
    ins, anchors = _crossing()
    scale, sigma = 16.0, 0.8  # the crossing (0.8 units from each anchor) is inside both kernels, the other anchor not
    psi = torch.zeros(2, 60, 60)
    for k in range(2):  # a perfect anchored embedding: every pixel at its worm's anchor (x, y) / scale
        psi[:, ins[k]] = anchors[k].flip(0)[:, None] / scale
    both = ins.all(0)
    psi[:, both] = anchors.flip(1).mean(0)[:, None] / scale  # the crossing votes between the two anchors
    fg = ins.any(0).float()
    count = ins.sum(0).float()
    seed = torch.where(both, 0.5, 0.9) * fg
    config = DecodeConfig(min_size=20, kernel_threshold=0.3, merge_threshold=0)
    dec = decode(psi, fg, seed, sigma, config, count)
    assert len(dec.instances) == 2
    shared = dec.instances.all(0)
    assert shared[both.numpy()].all() and shared.sum() == both.sum()
    # with a count head that sees no crossing, each pixel joins one worm only
    single = decode(psi, fg, seed, sigma, config, count.clamp_max(1))
    assert single.instances.sum(0).max() == 1


def test_anchored_model_outputs_and_bounded_offsets():
    model = build_model(ModelConfig(target="anchor", offset_range=32.0))
    out = model(torch.randn(2, 1, 70, 90))
    assert out.count_logit.shape == (2, 3, 70, 90) and out.sigma.shape == (2, 1, 70, 90)
    assert torch.allclose(out.phi[:, :2], torch.zeros(1))  # offsets start at zero
    with torch.no_grad():
        model.phi_head[-1].bias[:2] = 100.0
    phi = model(torch.randn(1, 1, 70, 90)).phi
    assert phi[:, :2].abs().max() <= 32.0 / model.config.coord_scale + 1e-6


def test_anchor_losses_on_a_crop_without_worms():
    psi = pixel_coordinates(32, 32, 4, 16.0).clone().requires_grad_(True)
    count_logit = torch.zeros(3, 32, 32, requires_grad=True)
    out = anchor_losses(psi, count_logit, torch.zeros(32, 32), torch.full((32, 32), 0.5),
                        torch.zeros(0, 32, 32, dtype=torch.bool), torch.zeros(0, 2), 16.0, AnchorWeights())
    out["total"].backward()
    assert torch.isfinite(out["total"]) and count_logit.grad[0].mean() < 0  # pushed toward "no worm"
