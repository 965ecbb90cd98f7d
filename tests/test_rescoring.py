"""Instance rescoring: the features of decoded instances, the learned score and its place in the decoder."""

from types import SimpleNamespace

import numpy as np
import torch

from napari_semiconv.decode import DecodeConfig, decode, model_decode_config
from napari_semiconv.rescoring import CLEARANCE_REACH, FEATURES, Rescorer, fit_rescorer, instance_features

from .test_anchors import _crossing
from .test_flow import crossing_votes


def _features(stack, multi=None, votes=None, pixel_scale=1.0):
    n = len(stack)
    ones = torch.ones(n)
    return dict(zip(FEATURES, instance_features(torch.from_numpy(stack), torch.from_numpy(stack.any(0)),
                                                None if multi is None else torch.from_numpy(multi),
                                                (ones, ones, ones), votes, pixel_scale).T))


def test_a_piece_cut_off_at_a_crossing_touches_the_other_worm_and_its_votes_meet_at_the_crossing():
    ins, _ = _crossing()
    ins = ins.numpy()
    multi = ins.all(0)
    piece = ins[0] & (np.arange(60) > 33)[None]  # the horizontal worm's right end, cut at the crossing
    stack = np.stack([ins[1], piece])
    votes = torch.tensor([[12.0, 30.0], [30.0, 35.0]])  # the vertical worm's at its anchor, the piece's at the cut
    f = _features(stack, multi, votes)
    assert f["contact"][1] > f["contact"][0] > 0  # the piece's rim lies more on the other worm
    assert f["log_area"][0] > f["log_area"][1] and f["log_relative_area"][1] < f["log_relative_area"][0]
    assert f["crossing"][1] == 0 and 0 < f["crossing"][0] < 0.2
    assert abs(f["width"][0] - 8) < 2  # 2 x area / rim, in px
    assert f["vote_clearance"][0] > 0.5 and f["vote_clearance"][1] <= 2 / CLEARANCE_REACH
    assert torch.all(f["vote_inside"] == 1) and torch.all(f["border"] == 0)
    assert torch.all(_features(stack, multi)["vote_inside"] == 0)  # no votes given: those features are 0


def test_features_of_a_scene_seen_at_twice_the_magnification_read_the_same_sizes_with_pixel_scale_2():
    ins, _ = _crossing()
    ins = ins.numpy()
    multi = ins.all(0)
    votes = torch.tensor([[12.0, 30.0], [30.0, 12.0]])
    big = ins.repeat(2, 1).repeat(2, 2)  # each pixel 2 x 2
    small, large = _features(ins, multi, votes), _features(big, big.all(0), 2 * votes + 0.5, pixel_scale=2.0)
    for name in ("log_area", "width", "log_length", "vote_clearance", "crossing", "log_relative_area"):
        assert torch.allclose(small[name], large[name], rtol=0.05, atol=0.05), name
    unscaled = _features(big, big.all(0), 2 * votes + 0.5)
    assert torch.all(unscaled["log_area"] - small["log_area"] > 1.2)  # 4x the area without it


def test_skeletons_tell_a_whole_worm_from_a_piece_ending_in_a_crossing_and_from_two_worms_merged():
    ins, _ = _crossing()
    ins = ins.numpy()
    multi = ins.all(0)
    piece = ins[0] & (np.arange(60) >= 26)[None]  # the horizontal worm's right part, holding the crossing
    f = _features(np.stack([ins[1], piece, ins[0] | ins[1]]), multi)
    assert f["skeleton_ends"][0] == 2 and f["skeleton_branches"][0] == 0 and f["ends_on_crossing"][0] == 0
    assert f["skeleton_ends"][1] == 2 and f["ends_on_crossing"][1] == 1  # one end stops in the crossing
    assert f["skeleton_ends"][2] == 4 and f["skeleton_branches"][2] >= 1  # a cross: four ends and a branch
    assert f["log_relative_skeleton"][1] < 0 < f["log_relative_skeleton"][2]


def test_a_fitted_rescorer_ranks_by_what_separates_and_travels_in_the_metadata(rng):
    x = rng.normal(size=(400, len(FEATURES)))
    y = (x[:, FEATURES.index("contact")] < 0).astype(float)  # only the contact tells
    r = fit_rescorer(x, y, hidden=())  # the logistic model
    p = r(torch.from_numpy(x).float()).numpy()
    assert ((p > 0.5) == (y > 0.5)).mean() > 0.95
    weights = np.array(r.layers[0][0][0])
    assert np.argmax(np.abs(weights)) == FEATURES.index("contact") and weights[FEATURES.index("contact")] < 0
    assert Rescorer.from_metadata(r.to_metadata()) == r
    assert Rescorer.from_metadata({**r.to_metadata(), "features": ["area"]}) is None  # another kind: ignored
    assert Rescorer.from_metadata(None) is None


def test_the_default_rescorer_learns_what_a_logistic_one_cannot_and_old_logistic_files_still_load(rng):
    x = rng.normal(size=(1000, len(FEATURES)))
    k = FEATURES.index("log_relative_area")
    y = (np.abs(x[:, k]) < 0.7).astype(float)  # a whole worm is neither much smaller nor much larger than the rest
    right = {h: ((fit_rescorer(x, y, hidden=h)(torch.from_numpy(x).float()).numpy() > 0.5) == (y > 0.5)).mean()
             for h in ((), (16, 16))}
    assert right[(16, 16)] > 0.9 and right[()] < 0.7
    # a file written before the network: one logistic layer stored as weights and bias
    w = rng.normal(size=len(FEATURES))
    old = {"features": list(FEATURES), "mean": [0.5] * len(FEATURES), "scale": [2.0] * len(FEATURES),
           "weights": w.tolist(), "bias": 0.3}
    got = Rescorer.from_metadata(old)(torch.from_numpy(x[:5]).float()).numpy()
    assert np.allclose(got, 1 / (1 + np.exp(-((x[:5] - 0.5) / 2.0 @ w + 0.3))), atol=1e-5)


def test_the_decoder_scores_with_the_model_s_rescorer_and_cuts_on_it():
    ins, _, fg, psi, seed = crossing_votes()
    count = ins.sum(0).float()
    assert decode(psi, fg, seed, 5.0 / 16.0, DecodeConfig(min_size=20, merge_threshold=0), count).features.size == 0
    plain = decode(psi, fg, seed, 5.0 / 16.0, DecodeConfig(min_size=20, merge_threshold=0, features=True), count)
    assert plain.features.shape == (2, len(FEATURES))
    assert np.allclose(plain.scores, plain.features[:, 0])  # without a rescorer: the decoder's own score
    # a rescorer that trusts small instances only (log area weighs against): a cut between them drops the larger
    k = FEATURES.index("log_area")
    w = tuple(-1.0 if i == k else 0.0 for i in range(len(FEATURES)))
    areas = plain.features[:, k]
    r = Rescorer(tuple(float(areas.mean()) if i == k else 0.0 for i in range(len(FEATURES))), (1.0,) * len(FEATURES),
                 (((w,), (0.0,)),))

    model = SimpleNamespace(metadata={"rescorer": r.to_metadata(), "decode": {"min_score": 0.5}})
    config = model_decode_config(model, min_size=20, merge_threshold=0)
    assert config.rescorer == r and config.min_score == 0.5
    cut = decode(psi, fg, seed, 5.0 / 16.0, config, count)
    if areas[0] != areas[1]:
        assert len(cut.instances) == 1 and cut.instances[0].sum() == min(m.sum() for m in plain.instances)
    assert np.all(cut.scores >= 0.5)
