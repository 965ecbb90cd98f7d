import pytest
import torch

from napari_semiconv.losses import LossWeights, attractive_loss, instance_losses, margin_loss, pairwise_distance


def test_eq5_hand_computed():
    # instance A: 1-D points 0 and 2 (mean 1, mean |dist| 1); instance B: 10,10,13 (mean 11, dists 1,1,2)
    psi = torch.tensor([[0.0], [2.0], [10.0], [10.0], [13.0]])
    masks = torch.tensor([[1, 1, 0, 0, 0], [0, 0, 1, 1, 1]], dtype=torch.float32)
    assert attractive_loss(psi, masks).item() == pytest.approx(1.0 + 4 / 3, abs=1e-3)


def test_eq5_is_unsquared_l2_in_d_dims():
    psi = torch.tensor([[0.0, 0.0], [3.0, 4.0]])  # distance 5, each point 2.5 from the mean
    masks = torch.ones(1, 2)
    assert attractive_loss(psi, masks).item() == pytest.approx(2.5, abs=1e-3)


def test_overlap_pixel_counts_in_both_instances():
    psi = torch.tensor([[0.0], [4.0], [8.0]])
    both = torch.tensor([[1, 1, 0], [0, 1, 1]], dtype=torch.float32)
    only = torch.tensor([[1, 0, 0], [0, 0, 1]], dtype=torch.float32)
    assert attractive_loss(psi, both).item() == pytest.approx(4.0, abs=1e-3)
    assert attractive_loss(psi, only).item() == pytest.approx(0.0, abs=1e-2)


def test_pairwise_distance_matches_cdist():
    a, b = torch.randn(5, 3), torch.randn(7, 3)
    assert torch.allclose(pairwise_distance(a, b), torch.cdist(a, b), atol=1e-3)
    # the decoder's many growths against one set of points pass its squared norms once: the same distances
    assert torch.equal(pairwise_distance(a, b, (b * b).sum(1)), pairwise_distance(a, b))
    assert not torch.equal(pairwise_distance(a, b, (b * b).sum(1) + 1), pairwise_distance(a, b))


def _image_with_two_instances():
    inst = torch.zeros(2, 16, 16, dtype=torch.bool)
    inst[0, 2:6, 2:10] = True
    inst[1, 5:12, 8:12] = True  # overlaps instance 0 at (5, 8..9)
    return inst


def test_instance_losses_terms_and_gradients():
    inst = _image_with_two_instances()
    psi = torch.randn(4, 16, 16, requires_grad=True)
    fg = torch.zeros(16, 16, requires_grad=True)
    seed = torch.zeros(16, 16, requires_grad=True)
    log_sigma = torch.tensor(0.0, requires_grad=True)
    out = instance_losses(psi, fg, seed, log_sigma.exp(), inst, LossWeights(margin=1.0, margin_delta=100.0))
    for key in ("embedding", "foreground", "kernel", "seed", "margin"):
        assert torch.isfinite(out[key]) and out[key].item() > 0
    out["total"].backward()
    assert psi.grad.abs().sum() > 0 and log_sigma.grad is not None and seed.grad.abs().sum() > 0
    # background pixels get no embedding gradient (only foreground pixels are clustered)
    assert psi.grad[:, 14, 0].abs().sum() == 0


def test_perfect_embedding_has_zero_attraction_and_low_kernel_loss():
    inst = _image_with_two_instances()
    inst[1, 5, 8:10] = False  # no overlap here
    psi = torch.zeros(2, 16, 16)
    psi[0][inst[1]] = 10.0
    out = instance_losses(psi, torch.zeros(16, 16), torch.zeros(16, 16), torch.tensor(0.5), inst, LossWeights())
    assert out["embedding"].item() == pytest.approx(0, abs=1e-2)
    assert out["kernel"].item() < 0.01


def test_valid_mask_ignores_pixels():
    inst = _image_with_two_instances()
    psi = torch.randn(3, 16, 16, requires_grad=True)
    valid = torch.zeros(16, 16, dtype=torch.bool)
    valid[:, :7] = True
    out = instance_losses(psi, torch.zeros(16, 16), torch.zeros(16, 16), torch.tensor(1.0), inst, LossWeights(), valid)
    out["total"].backward()
    assert psi.grad[:, :, 7:].abs().sum() == 0 and psi.grad[:, :, :7].abs().sum() > 0


def test_margin_separates_coinciding_worms_in_the_appearance_dims():
    # two crossing worms: centres 3 px apart (0.05 units), appearance parts almost equal -> the
    # hinge must push the appearance parts apart, not only the centres along their small gap
    means = torch.tensor([[1.0, 1.0, 0.001, 0.0], [1.05, 1.0, 0.0, 0.001]], requires_grad=True)
    loss = margin_loss(means, delta=0.6)
    loss.backward()
    assert loss.item() > 0.6  # both hinges violated
    assert means.grad[:, 2:].norm() > 0.5 * means.grad.norm()
    far = torch.tensor([[0.0, 0.0, 0.0, 0.0], [5.0, 0.0, 0.0, 0.0]])  # far apart: no penalty
    assert margin_loss(far, delta=0.6).item() == pytest.approx(0.0, abs=1e-6)


def test_centroid_term_anchors_votes_and_skips_cut_worms():
    from napari_semiconv.model.embedding import pixel_coordinates

    inst = torch.zeros(2, 16, 16, dtype=torch.bool)
    inst[0, 4:8, 3:11] = True  # wholly inside
    inst[1, 10:16, 2:6] = True  # touches the bottom border: its centroid is unknown
    coords = pixel_coordinates(16, 16, 2, 8.0)
    psi = torch.zeros(3, 16, 16)
    centre = coords[:, inst[0]].mean(1)
    psi[:2, inst[0]] = centre[:, None]  # worm 0 votes exactly at its centroid
    psi[:2, inst[1]] = 5.0  # worm 1 votes anywhere
    weights = LossWeights(centroid=1.0)
    fg = torch.zeros(16, 16)
    out = instance_losses(psi, fg, fg, torch.tensor(0.5), inst, weights, coords=coords)
    assert out["centroid"].item() == pytest.approx(0, abs=1e-2)
    shifted = psi.clone()
    shifted[0, inst[0]] += 0.5  # all of worm 0 votes 4 px (0.5 units) to the right: eq. 5 is blind to it
    out = instance_losses(shifted, fg, fg, torch.tensor(0.5), inst, weights, coords=coords)
    assert out["centroid"].item() == pytest.approx(0.5, abs=1e-2)
    assert out["embedding"].item() == pytest.approx(0, abs=1e-2)
