"""The flow model: the target flow along each worm's body, following it, its loss and its decoding."""

import numpy as np
import pytest
import torch

from napari_semiconv.decode import DecodeConfig, decode
from napari_semiconv.flow import SINK_CLEARANCE, flow_target, flow_votes, geodesic_distance, integrate
from napari_semiconv.losses import FlowWeights, flow_losses
from napari_semiconv.model import build_model
from napari_semiconv.model.embedding import ModelConfig
from napari_semiconv.segment import _count

from .test_anchors import _crossing, _u_worm


def _start(mask):
    """(P, 2) float (x, y) of the pixels of an (H, W) bool mask."""
    rows, cols = np.nonzero(mask)
    return torch.from_numpy(np.stack([cols, rows], 1).astype(np.float32))


def test_geodesic_distance_goes_round_the_bend():
    worm = _u_worm()
    tips = np.argwhere(worm[1:3])  # the top of both arms
    left, right = tips[tips[:, 1] < 40][0] + [1, 0], tips[tips[:, 1] > 40][0] + [1, 0]
    dist = geodesic_distance(worm, left)
    assert dist[tuple(left)] == 0 and np.isinf(dist[~worm]).all()
    straight = np.hypot(*(right - left))
    assert dist[tuple(right)] > 2 * straight  # along the body (arms + arc), not across the gap


def test_following_the_target_flow_of_a_u_shaped_worm_reaches_its_anchor():
    worm = _u_worm()
    anchor = np.array([[49.0, 40.0]])  # the middle of the bend (row, col)
    assert worm[49, 40]
    flow = torch.from_numpy(flow_target(worm[None], anchor))
    mag = torch.linalg.norm(flow, dim=0)
    assert torch.all(mag[torch.from_numpy(~worm)] == 0)
    assert torch.allclose(mag[torch.from_numpy(worm)][mag[torch.from_numpy(worm)] > 0], torch.ones(1), atol=1e-5)
    ends = integrate(flow, _start(worm), 200)
    err = torch.linalg.norm(ends - torch.tensor([40.0, 49.0]), dim=1)
    assert (err < 3).float().mean() > 0.95  # the tips of both arms arrive too: the path stays on the body


def test_points_that_settle_at_their_sink_stop_where_following_on_would_keep_them():
    worm = _u_worm()
    flow = torch.from_numpy(flow_target(worm[None], np.array([[49.0, 40.0]])))
    start = _start(worm)
    settled, full = integrate(flow, start, 200), integrate(flow, start, 200, settle=False)
    gap = torch.linalg.norm(settled - full, dim=1)
    assert gap.max() < 2 and (gap < 1).float().mean() > 0.95
    assert torch.linalg.norm(settled - start, dim=1).max() > 20  # the points did travel before they settled


def test_flow_target_skips_overlaps_and_leads_a_cut_worm_to_its_visible_middle():
    ins, anchors = _crossing()
    ins, anchors = ins.numpy(), anchors.numpy()
    anchors[0] = [30.0, -40.0]  # the horizontal worm's anchor lies outside the image, to its left
    flow = flow_target(ins, anchors, sink_clearance=SINK_CLEARANCE)
    both = ins.all(0)
    assert np.all(flow[:, both] == 0)
    # the horizontal worm flows to one sink on what the image shows of it, not to the image's edge, and
    # the sink lies SINK_CLEARANCE px clear of the crossing (cols 26-33), here right of it: the left end
    # flows right, through the crossing, and the right end left
    assert np.all(flow[0, 29:31, 5:12] > 0.85) and np.all(flow[0, 29:31, 48:55] < -0.85)
    ends = integrate(torch.from_numpy(flow), _start(ins[0] & ~both), 100, torch.from_numpy(both).float()).numpy()
    sink = np.median(ends, 0)
    assert np.mean(np.linalg.norm(ends - sink, axis=1) < 3) > 0.8  # one sink, reached through the crossing
    col, row = sink
    assert abs(row - 30) < 3 and 33 + SINK_CLEARANCE - 1 <= col < 55


def test_worms_anchored_on_their_crossing_get_sinks_clear_of_it_and_keep_their_votes():
    ins, _ = _crossing()
    ins = ins.numpy()
    both = ins.all(0)
    flow = torch.from_numpy(flow_target(ins, np.array([[30.0, 30.0], [30.0, 30.0]]), sink_clearance=SINK_CLEARANCE))  # anchors on the crossing
    for worm in ins:
        ends = integrate(flow, _start(worm & ~both), 100, torch.from_numpy(both).float()).numpy()
        sink = np.median(ends, 0)
        assert np.mean(np.linalg.norm(ends - sink, axis=1) < 3) > 0.9  # one sink for the whole worm
        col, row = np.round(sink).astype(int)
        assert worm[row, col] and max(abs(row - 30), abs(col - 30)) >= 4 + SINK_CLEARANCE - 1  # clear of it


def test_with_pieces_each_piece_between_overlaps_has_its_own_sink_and_no_vote_crosses():
    ins, anchors = _crossing()
    ins, anchors = ins.numpy(), anchors.numpy()
    both = ins.all(0)
    flow = flow_target(ins, anchors, sink_clearance=SINK_CLEARANCE, pieces=True)
    assert np.all(flow[:, both] == 0)
    # next to the crossing (cols 26-33) each arm of the horizontal worm flows away from it, into its own piece
    assert np.all(flow[0, 29:31, 20:25] < -0.85) and np.all(flow[0, 29:31, 35:40] > 0.85)
    for piece in (slice(5, 26), slice(34, 55)):  # the horizontal worm's two arms
        mask = np.zeros_like(both)
        mask[26:34, piece] = True
        ends = integrate(torch.from_numpy(flow), _start(mask), 100, torch.from_numpy(both).float()).numpy()
        assert np.ptp(ends, axis=0).max() < 4  # one sink per arm
        assert piece.start <= ends[:, 0].mean() < piece.stop  # on the arm, not across the crossing


def test_a_worm_leaving_and_reentering_the_image_gets_a_sink_in_each_piece():
    ins = np.zeros((1, 40, 60), bool)
    ins[0, 5:12, 0:40] = ins[0, 28:35, 0:40] = True  # a U whose bend lies outside the image, left
    flow = torch.from_numpy(flow_target(ins, np.array([[20.0, -15.0]])))
    for piece in (slice(5, 12), slice(28, 35)):
        mask = np.zeros((40, 60), bool)
        mask[piece, 0:40] = True
        ends = integrate(flow, _start(mask), 80).numpy()
        assert np.ptp(ends, axis=0).max() < 4 and piece.start <= ends[:, 1].mean() < piece.stop
        assert 10 < ends[:, 0].mean() < 30  # the middle of the piece, not its end at the image's edge


def test_flow_loss_of_the_target_is_zero_and_skips_crossings():
    ins, anchors = _crossing()
    target = torch.from_numpy(flow_target(ins.numpy(), anchors.numpy()))
    count_logit = torch.zeros(3, 60, 60)
    perfect = flow_losses(target, count_logit, target, ins, FlowWeights())
    assert perfect["flow"].item() < 1e-10 and perfect["still"].item() == 0
    wrong = torch.randn(2, 60, 60, requires_grad=True)
    out = flow_losses(wrong, count_logit, target, ins, FlowWeights())
    out["total"].backward()
    assert out["flow"] > 0.5 and out["still"] > 0.5
    assert torch.all(wrong.grad[:, 30, 30] == 0)  # the crossing pixel has no direction to learn
    assert torch.all(wrong.grad[:, 30, 50] != 0) and torch.all(wrong.grad[:, 2, 2] != 0)


def crossing_votes():
    """Two straight worms crossing (test_anchors._crossing) and the votes of their true flow: (instances (2, H, W)
    bool, crossing (H, W) bool, foreground (H, W) float, psi (2, H, W), seed (H, W)) at coord_scale 16."""
    ins, anchors = _crossing()
    flow = torch.from_numpy(flow_target(ins.numpy(), anchors.numpy()))
    both = ins.all(0)
    fg = ins.any(0).float()
    psi, seed = flow_votes(flow, fg, both.float(), 100, 16.0)
    return ins, both, fg, psi, seed


def test_decoding_two_crossing_worms_from_their_flow_shares_the_crossing():
    ins, both, fg, psi, seed = crossing_votes()
    dec = decode(psi, fg, seed, 5.0 / 16.0, DecodeConfig(min_size=20, merge_threshold=0), ins.sum(0).float())
    assert len(dec.instances) == 2
    for true in ins.numpy():  # each true worm is found whole, crossing included
        assert max((found & true).sum() / (found | true).sum() for found in dec.instances) > 0.95
    assert dec.instances.all(0)[both.numpy()].all()


def test_flow_model_outputs_a_unit_free_flow_at_any_scale():
    with pytest.raises(ValueError, match="dim 2"):
        ModelConfig(target="flow")
    model = build_model(ModelConfig.for_target("flow"))
    out = model(torch.randn(2, 1, 70, 90))
    assert out.phi.shape == (2, 2, 70, 90) and out.count_logit.shape == (2, 3, 70, 90)
    assert out.psi is None and out.seed_logit is None
    assert torch.all(out.phi == 0)  # the flow starts at zero: every pixel votes for itself
    with torch.no_grad():
        model.phi_head[-1].bias[:] = torch.tensor([0.6, -0.8])
    big = model.with_input_scale(2.0)(torch.randn(1, 1, 70, 90)).phi
    assert torch.allclose(big[0, :, 35, 45], torch.tensor([0.6, -0.8]))  # a direction: not scaled


def test_segmenting_with_a_flow_model_gives_a_result_to_inspect():
    from napari_semiconv.affinity import affinity_map, embedding_points, embedding_rgb
    from napari_semiconv.data.synthetic import SceneConfig, make_scene
    from napari_semiconv.segment import segment

    torch.manual_seed(0)
    model = build_model(ModelConfig.for_target("flow")).eval()
    image = make_scene(5, SceneConfig(style="fluorescence"), window=(200, 300, 64, 80)).image
    result = segment(model, image)
    assert result.embedding.shape == (2, 64, 80) and result.displacement.shape == (2, 64, 80)
    assert embedding_rgb(result).shape == (64, 80, 3)
    assert affinity_map(result, 10, 10).shape == (64, 80)
    assert embedding_points(result)["appearance"].shape[1] == 2


def test_flow_errors_near_a_crossing_and_missed_crossings_can_weigh_more():
    ins, anchors = _crossing()
    target = torch.from_numpy(flow_target(ins.numpy(), anchors.numpy()))
    count_logit = torch.zeros(3, 60, 60)
    near, far = target.clone(), target.clone()
    near[:, 30, 36] *= -1  # the same error, 3 px from the crossing or 17 px from it
    far[:, 30, 50] *= -1
    plain, heavy = FlowWeights(), FlowWeights(near_crossing=3.0, crossing_class=3.0)
    for weights in (plain, heavy):
        n, f = (flow_losses(x, count_logit, target, ins, weights)["flow"].item() for x in (near, far))
        assert n == pytest.approx(f) if weights is plain else n > 1.5 * f
    # a count head that says "one worm" everywhere on the worms costs more where the 2+ class weighs more
    one = torch.zeros(3, 60, 60)
    one[1] = 5.0
    assert flow_losses(target, one, target, ins, heavy)["count"] > flow_losses(target, one, target, ins, plain)["count"]


def test_a_model_is_trained_toward_the_sinks_of_its_own_target():
    from dataclasses import replace

    from napari_semiconv.heads import cache_features

    ins, _ = _crossing()
    ins = ins.numpy()
    anchors = np.array([[30.0, 30.0], [30.0, 30.0]])  # on the crossing: the two targets differ
    targets = []
    for clearance in (0.0, float(SINK_CLEARANCE)):
        model = build_model(replace(ModelConfig.for_target("flow", width=8, depth=3), sink_clearance=clearance))
        flow = cache_features(model, [(ins.any(0).astype(np.float32), ins, None, anchors)])[0].flow
        assert torch.equal(flow, torch.from_numpy(flow_target(ins, anchors, sink_clearance=clearance)))
        targets.append(flow)
    assert not torch.equal(*targets)


def test_count_per_pixel_is_the_likeliest_class(rng):
    """The decoder's 0 / 1 / 2+ count is the argmax of the count head's logits (computed without argmax)."""
    logits = torch.from_numpy(rng.normal(size=(3, 40, 50)).astype(np.float32))
    assert torch.equal(_count(logits), logits.argmax(0).float())


def test_paired_flows_give_each_crossing_worm_its_own_direction_and_votes_follow_their_own():
    ins, anchors = _crossing()
    ins, anchors = ins.numpy(), anchors.numpy()
    both = ins.all(0)
    pair = flow_target(ins, anchors, pair=True)
    single = flow_target(ins, anchors)
    assert pair.shape == (4, 60, 60)
    one = ins.sum(0) == 1
    assert np.array_equal(pair[:2][:, one], single[:, one]) and np.array_equal(pair[2:][:, one], single[:, one])
    # on the crossing one flow leads along the horizontal worm (left, to its anchor, and toward its middle line),
    # the other up the vertical one
    assert np.all(pair[0, both] < -0.3) and np.all(pair[3, both] < -0.3)
    start = _start(ins[0] & ~both & (np.arange(60) > 40)[None])  # the horizontal worm's right end
    ends = integrate(torch.from_numpy(pair), start, 100).numpy()  # no crossing map needed
    assert np.all(np.abs(ends[:, 1] - 30) < 4) and np.all(ends[:, 0] < 25)  # through the crossing, on its own worm
    stalled = integrate(torch.from_numpy(single), start, 100).numpy()  # one flow is zero there: votes stop
    assert np.all(stalled[:, 0] > 25)


def test_paired_flow_loss_takes_the_two_worms_in_either_order():
    ins, anchors = _crossing()
    target = torch.from_numpy(flow_target(ins.numpy(), anchors.numpy(), pair=True))
    count_logit = torch.zeros(3, 60, 60)
    swapped = torch.cat([target[2:], target[:2]])
    for pred in (target, swapped):
        assert flow_losses(pred, count_logit, target, ins, FlowWeights())["flow"].item() < 1e-10
    wrong = target.clone().requires_grad_(True)
    with torch.no_grad():
        wrong[:2, 30, 30] = wrong[2:, 30, 30]  # both flows of the crossing pixel follow one worm
    out = flow_losses(wrong, count_logit, target, ins, FlowWeights())
    out["total"].backward()
    assert out["flow"] > 0 and torch.any(wrong.grad[:, 30, 30] != 0)  # the crossing is learned, not skipped


def test_a_paired_copy_of_a_flow_model_decodes_as_it_did():
    from napari_semiconv.model.widen import pair_flows
    from napari_semiconv.segment import segment

    torch.manual_seed(0)
    model = build_model(ModelConfig.for_target("flow"))
    with torch.no_grad():
        for p in model.phi_head.parameters():
            p.normal_(0, 0.1)
    paired = pair_flows(model).eval()
    assert paired.config.flow_pair and not model.config.flow_pair
    x = torch.randn(1, 1, 64, 80)
    out = paired(x).phi
    assert out.shape == (1, 4, 64, 80) and torch.allclose(out[:, :2], out[:, 2:])
    assert torch.allclose(out[:, :2], model.eval()(x).phi, atol=1e-6)  # a wider convolution rounds differently
    image = np.random.default_rng(0).random((64, 80)).astype(np.float32)
    a, b = segment(model, image), segment(paired, image)
    assert np.array_equal(a.labels, b.labels) and np.allclose(a.displacement, b.displacement, atol=1e-2)  # px
    with pytest.raises(ValueError, match="flow"):
        pair_flows(paired)
    with pytest.raises(ValueError, match="flow models"):
        ModelConfig(flow_pair=True)
