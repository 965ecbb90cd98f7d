"""Property tests (hypothesis) of the decoders and the metrics on small random inputs."""

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from napari_semiconv.decode import DecodeConfig, decode
from napari_semiconv.metrics import evaluate, s_score, separated_pairs

masks = arrays(bool, st.tuples(st.integers(0, 4), st.integers(1, 12), st.integers(1, 12)))


@settings(max_examples=40, deadline=None)
@given(masks)
def test_perfect_prediction_scores_one_and_empty_scores_zero(gt):
    gt = gt[gt.reshape(len(gt), -1).any(1)] if len(gt) else gt
    m = evaluate([gt], [np.ones(len(gt))], [gt])
    assert m["avS"] == 1.0
    if len(gt):
        assert evaluate([np.zeros((0, *gt.shape[1:]), bool)], [np.zeros(0)], [gt])["avS"] == 0.0


@settings(max_examples=40, deadline=None)
@given(masks, masks, st.randoms(use_true_random=False))
def test_metrics_ignore_the_order_of_instances(pred, gt, rnd):
    if pred.shape[1:] != gt.shape[1:]:
        return
    order = list(range(len(pred)))
    rnd.shuffle(order)
    scores = np.linspace(0.1, 1, len(pred))
    a = evaluate([pred], [scores], [gt])
    b = evaluate([pred[order]], [scores[order]], [gt])
    np.testing.assert_equal(a, b)  # (AP is NaN alike when there is no ground truth)
    assert separated_pairs(pred, gt) == separated_pairs(pred[order], gt)
    assert 0 <= s_score(pred, gt, 0.5) <= 1


@settings(max_examples=30, deadline=None)
@given(arrays(np.float32, st.tuples(st.just(3), st.integers(1, 10), st.integers(1, 10)),
              elements=st.floats(-3, 3, width=32)),
       arrays(np.float32, st.tuples(st.integers(1, 10), st.integers(1, 10)), elements=st.floats(0, 1, width=32)),
       st.sampled_from(["seeded", "meanshift"]), st.booleans())
def test_decoders_give_consecutive_labels_and_keep_background(psi, fg, name, overlap):
    h, w = min(psi.shape[1], fg.shape[0]), min(psi.shape[2], fg.shape[1])
    psi, fg = torch.from_numpy(psi[:, :h, :w].copy()), torch.from_numpy(fg[:h, :w].copy())
    dec = decode(psi, fg, fg, 0.5, DecodeConfig(name=name, min_size=1, overlap=overlap))
    ids = np.unique(dec.labels)
    assert list(ids[ids > 0]) == list(range(1, len(dec.instances) + 1))  # consecutive, one per instance
    assert not dec.labels[fg.numpy() <= 0.5].any() and not dec.instances[:, fg.numpy() <= 0.5].any()
    assert len(dec.scores) == len(dec.instances) and np.isfinite(dec.scores).all()
