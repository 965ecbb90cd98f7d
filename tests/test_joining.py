"""Joining a piece model's pieces across the crossings that cut them."""

from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from napari_semiconv.joining import (
    PAIR_FEATURES,
    SWAPPED,
    Joiner,
    JoinerNet,
    candidate_pairs,
    contacts,
    join,
    pair_probabilities,
    patch_arms,
)

from .test_anchors import _crossing


def _pieces():
    """The four arms of two straight worms crossing (test_anchors._crossing) as pieces, and the crossing."""
    ins = _crossing()[0].numpy()
    multi = ins.all(0)
    arms = [(0, slice(5, 26)), (0, slice(34, 55)), (1, slice(5, 26)), (1, slice(34, 55))]
    pieces = np.zeros((4, 60, 60), bool)
    for k, (worm, span) in enumerate(arms):
        if worm == 0:
            pieces[k, 26:34, span] = True
        else:
            pieces[k, span, 26:34] = True
    return pieces, multi, ins


def _straight_joiner() -> Joiner:
    """A joiner that joins two arms when they point opposite ways (its 'opposite' feature above 0.5)."""
    net = JoinerNet()
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
        first = net.head[0]
        first.weight[0, 64 + PAIR_FEATURES.index("opposite")] = 1.0
        net.head[2].weight[0, 0] = 20.0
        net.head[2].bias[0] = -10.0
    return Joiner(net.eval(), 0.5)


def test_each_arm_at_a_crossing_points_away_from_it():
    pieces, multi, _ = _pieces()
    labels, patches = patch_arms(pieces, multi, np.zeros(multi.shape, np.float32))
    assert labels.max() == 1 and len(patches) == 1 and len(patches[0].arms) == 4
    for arm in patches[0].arms:
        outward = arm.contact - np.array([29.5, 29.5])
        assert arm.direction @ outward / np.linalg.norm(outward) > 0.9


def test_opposite_arms_are_joined():
    pieces, multi, _ = _pieces()
    _, _, pairs = candidate_pairs(pieces, multi, np.zeros((60, 60), np.float32))
    assert len(pairs) == 6 and all(p[4].shape == (5, 48, 48) for p in pairs)
    worm_of = join(pieces, multi, np.zeros((60, 60), np.float32), _straight_joiner())
    assert sorted(worm_of) == [0, 0, 1, 1] and worm_of[0] == worm_of[1] and worm_of[2] == worm_of[3]


def test_a_joiner_round_trips_through_a_model_files_metadata():
    joiner = _straight_joiner()
    again = Joiner.from_metadata(joiner.to_metadata())
    crops, feats = torch.rand(3, 5, 48, 48), torch.rand(3, len(PAIR_FEATURES))
    assert again.threshold == joiner.threshold
    assert torch.allclose(again.net(crops, feats), joiner.net(crops, feats))
    with pytest.warns(UserWarning, match="older kind"):
        assert Joiner.from_metadata({"features": ["other"]}) is None
    assert Joiner.from_metadata(None) is None


def _cut_worm():
    """One straight worm (rows 26-33) cut across into two pieces that touch end to end (columns 5-29 and 30-54)."""
    pieces = np.zeros((2, 60, 60), bool)
    pieces[0, 26:34, 5:30] = True
    pieces[1, 26:34, 30:55] = True
    return pieces, np.zeros((60, 60), bool)


def test_pieces_that_touch_outside_crossings_are_joined_only_by_a_joiner_with_a_contact_network():
    pieces, multi = _cut_worm()
    image = np.zeros((60, 60), np.float32)
    band = contacts(pieces, multi)
    assert band[26:34, 28:32].all() and band.sum() == 32  # 2 px either side of the cut, the worm's width
    _, patches, pairs = candidate_pairs(pieces, multi, image, touching=True)
    assert [p.contact for p in patches] == [True] and len(pairs) == 1
    assert candidate_pairs(pieces, multi, image)[2] == []  # without contacts: no patch, nothing to judge
    straight = _straight_joiner()
    assert list(join(pieces, multi, image, straight)) == [0, 1]
    assert list(join(pieces, multi, image, replace(straight, contact_net=straight.net))) == [0, 0]
    never = replace(straight, contact_net=_straight_joiner().net)
    with torch.no_grad():
        never.contact_net.head[2].bias.fill_(-100.0)  # a contact network that never joins
    assert list(join(pieces, multi, image, never)) == [0, 1]


def test_the_pieces_of_a_crossing_meeting_at_its_corners_are_no_contact(monkeypatch):
    from napari_semiconv import joining

    pieces, multi, _ = _pieces()
    monkeypatch.setattr(joining, "MIN_CONTACT", 1)  # however small a contact counts, the corners are too near
    assert not contacts(pieces, multi).any()
    monkeypatch.setattr(joining, "CONTACT_CLEAR", 0)
    assert contacts(pieces, multi).any()  # the corners, where the crossing's pieces meet


def test_crossings_and_contacts_in_one_plane_are_each_judged_by_their_own_network():
    crossing, multi, _ = _pieces()
    cut, _ = _cut_worm()
    pieces = np.zeros((6, 60, 120), bool)
    pieces[:4, :, :60], pieces[4:, :, 60:] = crossing, cut
    multi = np.pad(multi, ((0, 0), (0, 60)))
    image = np.zeros((60, 120), np.float32)
    _, patches, pairs = candidate_pairs(pieces, multi, image, touching=True)
    assert sorted(p.contact for p in patches) == [False, True] and len(pairs) == 7
    straight = _straight_joiner()
    with pytest.raises(ValueError, match="contact network"):
        pair_probabilities(straight, patches, pairs)
    never = replace(straight, contact_net=_straight_joiner().net)
    with torch.no_grad():
        never.contact_net.head[2].bias.fill_(-100.0)
    joining_probabilities = pair_probabilities(never, patches, pairs)
    at_contact = np.array([patches[p[0]].contact for p in pairs])
    assert (joining_probabilities[at_contact] < 0.01).all() and joining_probabilities[~at_contact].max() > 0.99
    worm_of = join(pieces, multi, image, never)
    assert worm_of[0] == worm_of[1] and worm_of[2] == worm_of[3] and worm_of[0] != worm_of[2]
    assert worm_of[4] != worm_of[5]
    worm_of = join(pieces, multi, image, replace(straight, contact_net=straight.net))
    assert len(set(worm_of)) == 3 and worm_of[4] == worm_of[5]
    with pytest.raises(ValueError, match="plain"):
        replace(straight, contact_net=JoinerNet(relational=True))


def test_a_joiners_contact_network_round_trips_and_counts_in_equality():
    straight = _straight_joiner()
    with_contacts = replace(straight, contact_net=_straight_joiner().net)
    again = Joiner.from_metadata(with_contacts.to_metadata())
    crops, feats = torch.rand(3, 5, 48, 48), torch.rand(3, len(PAIR_FEATURES))
    assert torch.allclose(again.contact_net(crops, feats), with_contacts.contact_net(crops, feats))
    assert again == with_contacts and again != straight and straight != again
    assert Joiner.from_metadata(straight.to_metadata()).contact_net is None  # a file stored without one
    other = replace(straight, contact_net=JoinerNet().eval())
    assert other != with_contacts


def test_a_relational_joiner_weighs_a_pair_against_its_rivals_only():
    torch.manual_seed(0)
    net = JoinerNet(relational=True).eval()
    crops, feats = torch.rand(5, 5, 48, 48), torch.rand(5, len(PAIR_FEATURES))
    arms = torch.tensor([[0, 1], [0, 2], [1, 2], [7, 8], [9, 8]])  # two patches: arms 0-2 and arms 7-9
    with torch.no_grad():
        base = net(crops, feats, arms)
        assert torch.allclose(net(crops, feats, arms[:, [1, 0]]), base, atol=1e-6)  # either order of a pair's arms
        assert torch.allclose(net(crops, feats, arms * 3 + 11), base, atol=1e-6)  # any ids
        alone = net(crops[:3], feats[:3], arms[:3])  # without the other patch's pairs
        assert torch.allclose(alone, base[:3], atol=1e-6)
        rival = net(torch.cat([crops, crops[3:4]]), torch.cat([feats, feats[3:4] + 1]), torch.cat([arms, arms[3:4]]))
        assert torch.allclose(rival[:3], base[:3], atol=1e-6)  # a new rival of arms 7 and 8 changes only their pairs
        assert (rival[3:5] - base[3:5]).abs().min() > 1e-4
    with pytest.raises(ValueError, match="arms"):
        net(crops, feats)


def test_a_pairs_rivals_are_the_other_pairs_at_its_arms():
    from napari_semiconv.joining import _rivals

    h = torch.randn(5, 3)
    arms = torch.tensor([[0, 1], [0, 2], [1, 2], [0, 3], [4, 5]])
    mean, top = _rivals(h, arms)
    for p, (a, b) in enumerate(arms.tolist()):  # brute force, pair by pair
        want_mean, want_top = torch.zeros(3), torch.zeros(3)
        for arm in (a, b):
            others = [q for q, ends in enumerate(arms.tolist()) if arm in ends and q != p]
            want_mean += h[others].mean(0) if others else 0
            want_top += h[others + [p]].max(0).values
        assert torch.allclose(mean[p], want_mean, atol=1e-6) and torch.allclose(top[p], want_top, atol=1e-6)


def test_pair_arms_numbers_each_patchs_arms_apart():
    from napari_semiconv.joining import Patch, pair_arms

    patches = [Patch(1, (), 10, (None, None, None)), Patch(2, (), 10, (None, None))]
    pairs = [(0, 0, 1), (0, 1, 2), (0, 0, 2), (1, 0, 1)]
    assert pair_arms(patches, pairs).tolist() == [[0, 1], [1, 2], [0, 2], [3, 4]]


def test_a_relational_joiner_round_trips_and_joins_with_its_arms():
    straight = _straight_joiner()
    net = JoinerNet(relational=True)
    net.load_state_dict({**straight.net.state_dict(), **{k: v for k, v in net.state_dict().items()
                                                          if k.startswith("rivals")}})
    with torch.no_grad():
        net.rivals[2].weight.zero_()
        net.rivals[2].bias.zero_()  # rivals that change nothing: it answers as the straight joiner
    joiner = Joiner.from_metadata(Joiner(net.eval(), 0.5).to_metadata())
    older = {k: v for k, v in straight.to_metadata().items() if k != "relational"}  # stored before relational joiners
    assert joiner.net.relational and not Joiner.from_metadata(older).net.relational
    assert joiner != straight and straight != joiner  # the same weights where both have them, not the same kind
    pieces, multi, _ = _pieces()
    image = np.zeros((60, 60), np.float32)
    assert list(join(pieces, multi, image, joiner)) == list(join(pieces, multi, image, straight))
    assert sorted(join(pieces, multi, image, joiner)) == [0, 0, 1, 1]


def _piece_outputs():
    """The network outputs (as :func:`~napari_semiconv.segment.predict_iter` gives them) of a perfect piece model on
    the two crossing worms of test_anchors._crossing, and the worms (2, 60, 60) bool."""
    from napari_semiconv.flow import SINK_CLEARANCE, flow_target, flow_votes

    ins, anchors = _crossing()
    ins = ins.numpy()
    flow = torch.from_numpy(flow_target(ins, anchors.numpy(), sink_clearance=SINK_CLEARANCE, pieces=True))
    fg = torch.from_numpy(ins.any(0)).float()
    psi, seed = flow_votes(flow, fg, torch.from_numpy(ins.all(0)).float(), 100, 16.0)
    return {"psi": psi, "fg": fg, "seed": seed, "sigma": 5.0 / 16.0, "count": torch.from_numpy(ins.sum(0)).float(),
            "shift": None, "image": torch.zeros(60, 60)}, ins


def test_decoding_a_piece_flow_joins_the_pieces_into_the_two_crossing_worms():
    from napari_semiconv.decode import DecodeConfig
    from napari_semiconv.segment import decode_outputs

    out, ins = _piece_outputs()
    config = DecodeConfig(min_size=20, merge_threshold=0)
    assert len(decode_outputs(out, config).instances) == 4  # without a joiner: the four arms
    worms = decode_outputs(out, replace(config, joiner=_straight_joiner()))
    assert len(worms.instances) == 2
    for true in ins:
        assert max((w & true).sum() / (w | true).sum() for w in worms.instances) > 0.95


def test_straight_through_pairs_lead_their_rivals_match_in_look_and_run_through_the_patch():
    pieces, multi, _ = _pieces()
    image = np.where(pieces[:2].any(0), 1.0, np.where(pieces[2:].any(0), 3.0, 0.0)).astype(np.float32)  # two looks
    _, _, pairs = candidate_pairs(pieces, multi, image)
    feats = {frozenset((p[1], p[2])): dict(zip(PAIR_FEATURES, p[3])) for p in pairs}
    straight = [f for f in feats.values() if f["opposite"] > 0.9]
    bent = [f for f in feats.values() if f["opposite"] <= 0.9]
    assert len(straight) == 2 and len(bent) == 4
    for f in straight:
        assert f["lead_a"] > 0.5 and f["lead_b"] > 0.5 and f["intensity_gap"] < 1e-6
        assert f["path_in_patch"] > 0.3 and f["path_on_worms"] == 1.0
    for f in bent:
        assert f["lead_a"] < 0 and f["lead_b"] < 0 and f["intensity_gap"] > 1.5


def test_swapped_features_are_the_pair_seen_from_its_other_arm():
    from napari_semiconv.joining import Arm, Patch, pair_features

    rng = np.random.default_rng(1)
    pieces, multi, _ = _pieces()
    labels, (patch,) = patch_arms(pieces, multi, np.zeros(multi.shape, np.float32))
    angles = rng.uniform(0, 2 * np.pi, 5)  # five arms of four pieces in no symmetric layout
    arms = [Arm(p, rng.uniform(22, 38, 2), np.array([np.cos(t), np.sin(t)]), int(rng.integers(25, 200)),
                float(rng.random()), float(rng.uniform(2, 8))) for p, t in zip((0, 1, 2, 3, 3), angles)]
    areas = rng.uniform(200, 900, 4)
    args = (areas, float(np.median(areas)), labels, pieces.any(0) | multi)
    seen = {(a, b): x for a, b, x in pair_features(Patch(patch.label, patch.box, patch.area, tuple(arms)), *args)}
    n, ordered = len(arms), []
    for a, b, x in pair_features(Patch(patch.label, patch.box, patch.area, tuple(arms[::-1])), *args):
        assert np.allclose(x[list(SWAPPED)], seen[(n - 1 - b, n - 1 - a)], atol=1e-5)  # arm a is arm n - 1 - a
        ordered.append(not np.allclose(x, seen[(n - 1 - b, n - 1 - a)]))
    assert len(ordered) == 9 and all(ordered)  # each pair's features depend on which arm comes first


def test_a_pair_crop_cut_from_its_window_samples_as_the_whole_image_does_at_the_border():
    import torch.nn.functional as F

    from napari_semiconv.joining import CROP, CROP_MARGIN, pair_crops, pair_features

    pieces, multi, _ = _pieces()
    pieces, multi = pieces[:, 15:, 18:], multi[15:, 18:]  # the crops around the crossing run past the top-left edge
    image = np.random.default_rng(0).random(multi.shape).astype(np.float32)
    labels, patches = patch_arms(pieces, multi, image)
    patch = patches[0]
    areas = pieces.reshape(len(pieces), -1).sum(1).astype(float)
    owner = np.where(pieces.any(0), pieces.argmax(0) + 1, 0).astype(np.int32)
    rows = pair_features(patch, areas, float(np.median(areas)), labels, owner > 0)
    crops = pair_crops(image, owner, labels, patch, rows)
    h, w = multi.shape
    below = 0
    for crop, (a, b, _) in zip(crops, rows):
        x, y = patch.arms[a].contact, patch.arms[b].contact
        (cr, cc), side = (x + y) / 2, np.linalg.norm(y - x) + CROP_MARGIN
        ys = torch.linspace(cr - side / 2, cr + side / 2, CROP, dtype=torch.float64)
        xs = torch.linspace(cc - side / 2, cc + side / 2, CROP, dtype=torch.float64)
        below += int(ys[0] < 0 or xs[0] < 0)
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        grid = torch.stack([gx / (w - 1) * 2 - 1, gy / (h - 1) * 2 - 1], -1)[None].float()
        whole = np.stack([image, pieces[patch.arms[a].piece], pieces[patch.arms[b].piece], labels == patch.label,
                          pieces.any(0)]).astype(np.float32)
        pixels = F.grid_sample(torch.from_numpy(whole[:1])[None], grid, align_corners=True)[0]
        masks = F.grid_sample(torch.from_numpy(whole[1:])[None], grid, mode="nearest", align_corners=True)[0]
        assert torch.allclose(crop[:1], pixels, atol=1e-4)
        assert (crop[1:] != masks).float().mean() < 0.01  # nearest sampling may round a border pixel either way
    assert below > 0
    # an image whose value is its own (row, col): each crop's centre sample is the point between its contacts
    where = (np.arange(h)[:, None] * 1000 + np.arange(w)[None]).astype(np.float32)
    for crop, (a, b, _) in zip(pair_crops(where, owner, labels, patch, rows), rows):
        centre = (patch.arms[a].contact + patch.arms[b].contact) / 2
        middle = crop[0, CROP // 2 - 1:CROP // 2 + 1, CROP // 2 - 1:CROP // 2 + 1].mean()
        assert abs(float(middle) - (centre[0] * 1000 + centre[1])) < 2


def test_a_piece_model_keeps_its_joiner_where_its_thresholds_are_chosen_and_when_fine_tuned():
    from napari_semiconv.decode import DecodeConfig, model_decode_config
    from napari_semiconv.finetune import _learned_parts
    from napari_semiconv.threshold_search import search_thresholds

    joiner = _straight_joiner()
    model = SimpleNamespace(metadata={"joiner": joiner.to_metadata(), "decode": {"fg_threshold": 0.5}})
    assert model_decode_config(model).joiner == model_decode_config(model).joiner == joiner  # equal by value
    assert model_decode_config(model).joiner != Joiner(joiner.net, 0.9)
    assert _learned_parts(model) == {"joiner": model.metadata["joiner"]}
    # a piece model's outputs for two crossing worms (four arms and the crossing): scored with the joiner they are
    # the two worms, without it four pieces
    out, ins = _piece_outputs()
    grid = {"kernel_threshold": (0.4,), "merge_threshold": (0.0,), "fg_threshold": (0.5,), "min_score": (0.0,)}
    small = DecodeConfig(min_size=20)
    assert search_thresholds([out], [ins], grid, base=replace(small, joiner=joiner))[0][0] > 0.95
    assert search_thresholds([out], [ins], grid, base=small)[0][0] < 0.5


def test_a_pool_offers_both_joinings_and_the_rescorer_chooses_worms_that_share_no_piece():
    from napari_semiconv.decode import DecodeConfig, model_decode_config
    from napari_semiconv.rescoring import FEATURES, Rescorer
    from napari_semiconv.segment import decode_outputs

    out, ins = _piece_outputs()
    config = DecodeConfig(min_size=20, merge_threshold=0, joiner=_straight_joiner(), features=True, pool=True)
    # a pool without a rescorer to choose from it decodes as one joining, the joiner's
    alone = decode_outputs(out, config)
    assert (alone.instances == decode_outputs(out, replace(config, pool=False)).instances).all()
    assert len(alone.instances) == 2
    pool = decode_outputs(out, replace(config, candidates=True))  # asked for: every candidate, none chosen
    sizes = sorted(pool.instances.reshape(len(pool.instances), -1).sum(1))
    assert len(pool.instances) == 6  # the four pieces alone and the two joined worms
    assert sizes[-1] == sizes[-2] == ins[0].sum() == ins[1].sum()  # each joined worm holds the crossing
    # each of the pool's joinings holds either a joined worm or its two pieces: their shares of the joinings add to 1
    held = pool.features[:, FEATURES.index("agreement")]
    flat = pool.instances.reshape(len(pool.instances), -1)
    whole = flat.sum(1) == ins[0].sum()
    for piece in np.flatnonzero(~whole):
        worm = np.flatnonzero(whole & (flat >= flat[piece]).all(1))
        assert len(worm) == 1 and 0 < held[piece] < 1 and held[piece] + held[worm[0]] == pytest.approx(1)
    assert (alone.features[:, FEATURES.index("agreement")] == 1).all()  # one joining holds all its worms
    k = FEATURES.index("log_area")
    mean = tuple(float(np.median(pool.features[:, k])) if i == k else 0.0 for i in range(len(FEATURES)))
    for sign, count in ((1.0, 2), (-1.0, 4)):  # trusting large instances: the two worms; small ones: the pieces
        w = tuple(10 * sign if i == k else 0.0 for i in range(len(FEATURES)))
        model = SimpleNamespace(metadata={"rescorer": Rescorer(mean, (1.0,) * len(FEATURES), (((w,), (0.0,)),))
                                          .to_metadata(), "joiner": config.joiner.to_metadata(),
                                          "decode": {"pool": True}})
        chosen = decode_outputs(out, model_decode_config(model, min_size=20, merge_threshold=0))
        assert len(chosen.instances) == count
        own = chosen.instances & ~ins.all(0)[None]  # outside the crossing no pixel is in two chosen instances
        assert own.sum(0).max() == 1 and (own.any(0) == (ins.any(0) & ~ins.all(0))).all()


def test_a_worm_is_given_only_the_part_of_a_long_crossing_patch_near_its_own_pixels():
    from napari_semiconv.decode import _join_crossings

    # a 2+ patch 10 px high and 180 px long (worms lying across each other along a clump) and two worms that touch it,
    # one at each end, with a short patch where a third worm crosses the first
    h, w = 60, 200
    multi = np.zeros((h, w), bool)
    multi[25:35, 10:190] = True
    multi[4:12, 20:28] = True
    own = np.zeros((2, h, w), bool)
    own[0, 0:25, 20:28] = own[0, 35:60, 20:28] = True
    own[1, 0:25, 172:180] = own[1, 35:60, 172:180] = True
    own &= ~multi[None]
    fg = own.any(0) | multi
    idx = torch.from_numpy(np.flatnonzero(fg))
    members = torch.from_numpy(own.reshape(2, -1)[:, idx.numpy()])
    multi_p = torch.from_numpy(multi.reshape(-1)[idx.numpy()])
    grid = np.zeros((2, h * w), bool)
    for reach, far in ((0.0, True), (12.0, False)):
        grid[:, idx.numpy()] = _join_crossings(members, idx, multi_p, (h, w), reach).numpy()
        worms = grid.reshape(2, h, w)
        assert worms[0, 4:12, 20:28].all()  # the short crossing is the first worm's, whole, either way
        assert worms[0, 25:35, 20:28].all() and worms[1, 25:35, 172:180].all()  # where each runs through the patch
        assert worms[0, 25:35, 150:190].any() == far and worms[1, 25:35, 10:50].any() == far  # the far end: only whole
