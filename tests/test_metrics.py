import numpy as np
import pytest

from napari_semiconv.metrics import as_stack, average_precision, evaluate, iou_matrix, s_score


def _square(r, c, s=10, shape=(40, 40)):
    m = np.zeros(shape, bool)
    m[r : r + s, c : c + s] = True
    return m


def test_iou_known_values():
    a = _square(0, 0)
    b = _square(0, 5)  # overlap 10x5 = 50, union 150
    assert iou_matrix(a[None], b[None])[0, 0] == pytest.approx(1 / 3)
    labels = np.zeros((40, 40), np.uint16)
    labels[a] = 3
    assert as_stack(labels).shape == (1, 40, 40)


def test_s_score_counts():
    gt = np.stack([_square(0, 0), _square(20, 20), _square(0, 25)])
    pred = np.stack([_square(0, 0), _square(21, 21), _square(30, 0)])  # TP, TP at IoU 0.68, FP; 1 FN
    assert s_score(pred, gt, 0.5) == pytest.approx(2 / 4)
    assert s_score(pred, gt, 0.7) == pytest.approx(1 / 5)
    assert s_score(gt, gt, 0.9) == 1.0
    assert s_score(np.zeros((0, 40, 40)), np.zeros((0, 40, 40)), 0.5) == 1.0


def test_overlapping_ground_truth_can_be_matched_exactly_by_stacks():
    a, b = _square(0, 0, 12), _square(6, 6, 12)
    gt = np.stack([a, b])
    labels = np.zeros((40, 40), np.uint16)
    labels[a], labels[b] = 1, 2  # a label image loses the overlap of a
    assert s_score(gt, gt, 0.9) == 1.0
    assert s_score(labels, gt, 0.9) < 1.0


def test_average_precision_ranking():
    gt = [np.stack([_square(0, 0), _square(20, 20)])]
    pred = [np.stack([_square(0, 0), _square(20, 20), _square(0, 25)])]
    # the false positive ranked last: precision 1 up to recall 1
    assert average_precision(pred, [np.array([0.9, 0.8, 0.1])], gt, 0.5) == pytest.approx(1.0)
    # ranked first: precision at recall 0.5 is 1/2, at recall 1 is 2/3
    ap = average_precision(pred, [np.array([0.5, 0.4, 0.9])], gt, 0.5)
    assert ap == pytest.approx((51 * (2 / 3) + 50 * (2 / 3)) / 101, abs=0.01)
    m = evaluate(pred, [np.array([0.9, 0.8, 0.1])], gt)
    assert m["S@0.5"] == pytest.approx(2 / 3) and m["AP50"] == pytest.approx(1.0)
    assert m["avS"] == pytest.approx(2 / 3)


def _empty_match_fp():
    """One ground-truth worm; predictions [empty, match, false positive]."""
    gt = _square(0, 0)[None]
    pred = np.stack([np.zeros((40, 40), bool), _square(0, 0), _square(25, 25)])
    return pred, gt


def test_ap_keeps_each_score_with_its_mask_when_empty_masks_are_dropped():
    pred, gt = _empty_match_fp()
    # the false positive outranks the match: true AP50 = 0.5 (precision 1/2 at recall 1)
    assert average_precision([pred], [np.array([0.9, 0.1, 0.8])], [gt], 0.5) == pytest.approx(0.5, abs=0.01)
    assert average_precision([pred], [np.array([0.9, 0.8, 0.1])], [gt], 0.5) == pytest.approx(1.0)


def test_ap_nan_scores_rank_last_and_counts_must_match():
    pred, gt = _empty_match_fp()
    assert average_precision([pred], [np.array([0.9, np.nan, 0.8])], [gt], 0.5) == pytest.approx(0.5, abs=0.01)
    with pytest.raises(ValueError, match="3 predicted masks but 2 scores"):
        average_precision([pred], [np.array([0.9, 0.8])], [gt], 0.5)


def test_decoder_rejects_min_size_below_one():
    from napari_semiconv import SemiconvError
    from napari_semiconv.decode import DecodeConfig

    with pytest.raises(SemiconvError, match="at least 1"):
        DecodeConfig(min_size=0)


def test_separated_pairs_counts_touching_worms_kept_apart():
    from napari_semiconv.metrics import separated_pairs

    a, b, far = _square(0, 0), _square(0, 11), _square(28, 28)  # a and b 1 px apart, far alone
    gt = np.stack([a, b, far])
    assert separated_pairs(gt, gt) == (1, 1)
    assert separated_pairs(np.stack([a | b, far]), gt) == (1, 0)  # merged: the pair is lost
    assert separated_pairs(np.stack([a, far]), gt) == (1, 0)  # one of the two missed
    assert separated_pairs(gt, gt[:1]) == (0, 0)
