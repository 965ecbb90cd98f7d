import numpy as np
import pytest
import torch

from napari_semiconv import SemiconvError
from napari_semiconv.decode import DecodeConfig, decode


def _three_blobs():
    """psi (3, 20, 30): three foreground blobs with distinct embedding centres, one overlap band."""
    h, w = 20, 30
    psi = torch.zeros(3, h, w)
    fg = torch.zeros(h, w)
    seed = torch.zeros(h, w)
    centres = {0: (0.0, 0.0), 1: (5.0, 0.0), 2: (0.0, 5.0)}
    boxes = {0: (slice(2, 8), slice(2, 12)), 1: (slice(10, 18), slice(2, 12)), 2: (slice(2, 18), slice(18, 28))}
    for k, (r, c) in boxes.items():
        psi[0][r, c], psi[1][r, c] = centres[k]
        fg[r, c] = 1
        seed[r, c] = 0.9
    # a band between blobs 0 and 1 whose embedding is halfway: it belongs to both
    psi[0][8:10, 2:12] = 2.5
    fg[8:10, 2:12] = 1
    seed[8:10, 2:12] = 0.3
    return psi, fg, seed


def test_seeded_finds_instances_and_overlap():
    psi, fg, seed = _three_blobs()
    sigma = 2.5 / np.log(2) * 1.05  # the halfway band is just inside both kernels at threshold 0.5
    dec = decode(psi, fg, seed, sigma, DecodeConfig(min_size=5, overlap=True, merge_threshold=0, kernel_threshold=0.5))
    assert len(dec.instances) == 3 and dec.labels.dtype == np.uint16
    overlap = dec.instances.sum(0) > 1
    assert overlap[8:10, 2:12].all() and overlap.sum() == 20
    assert set(np.unique(dec.labels)) == {0, 1, 2, 3}
    assert np.all((dec.scores > 0) & (dec.scores <= 1))
    no_overlap = decode(psi, fg, seed, sigma, DecodeConfig(min_size=5, overlap=False, merge_threshold=0, kernel_threshold=0.5))
    assert no_overlap.instances.sum(0).max() == 1


def test_seeded_min_size_and_empty():
    psi, fg, seed = _three_blobs()
    dec = decode(psi, fg, seed, 1.0, DecodeConfig(min_size=100))
    assert len(dec.instances) == 1  # only the 16 x 10 blob is large enough
    empty = decode(psi, torch.zeros_like(fg), seed, 1.0)
    assert empty.instances.shape == (0, 20, 30) and empty.labels.max() == 0


@pytest.mark.parametrize("name", ["meanshift", "kmeans"])
def test_other_decoders_separate_blobs(name):
    psi, fg, seed = _three_blobs()
    fg[8:10] = 0  # drop the ambiguous band
    dec = decode(psi, fg, seed, 1.0, DecodeConfig(name=name, k=3, min_size=5))
    assert len(dec.instances) == 3
    assert dec.instances.sum(0).max() == 1
    for r, c in [(4, 5), (14, 5), (10, 22)]:
        assert dec.labels[r, c] > 0
    assert len({dec.labels[4, 5], dec.labels[14, 5], dec.labels[10, 22]}) == 3


def test_decoder_config_errors():
    with pytest.raises(SemiconvError, match="unknown decoder"):
        DecodeConfig(name="watershed")
    with pytest.raises(SemiconvError, match="number of instances"):
        DecodeConfig(name="kmeans", k=0)


def test_touching_pieces_with_close_centres_merge():
    psi = torch.zeros(2, 10, 30)
    fg = torch.zeros(10, 30)
    fg[2:8, 2:28] = 1
    psi[0][:, 15:] = 1.0  # one object whose two halves sit 1.0 apart in Psi
    psi[0][:, 25:] = 4.0  # and a third touching piece far away in Psi: another object
    seed = fg * 0.9
    sigma = 0.5  # radius 0.35: the halves are split by growth, K between them is exp(-2) = 0.14
    split = decode(psi, fg, seed, sigma, DecodeConfig(min_size=5, merge_threshold=0))
    merged = decode(psi, fg, seed, sigma, DecodeConfig(min_size=5, merge_threshold=0.1))
    assert len(split.instances) == 3 and len(merged.instances) == 2
    assert merged.labels[4, 5] == merged.labels[4, 20] != merged.labels[4, 27]


def test_an_instance_whose_votes_spread_scores_lower():
    psi, fg, seed = _three_blobs()
    fg[8:10] = 0  # no band between blobs 0 and 1
    psi[0][10:14, 2:12] += 1.0  # half of blob 1 votes 1 unit off its centre: still inside its kernel
    dec = decode(psi, fg, seed, 1.5, DecodeConfig(min_size=5, overlap=False, merge_threshold=0, kernel_threshold=0.4))
    assert len(dec.instances) == 3
    spread = next(i for i, m in enumerate(dec.instances) if m[12, 5])
    whole = next(i for i, m in enumerate(dec.instances) if m[5, 20])
    assert dec.scores[spread] < 0.75 * dec.scores[whole]  # the same seed and foreground, half its votes spread


def test_instances_scored_under_the_minimum_score_are_dropped_from_stack_and_labels():
    psi, fg, seed = _three_blobs()
    fg[8:10] = 0
    seed[10:18, 2:12] = 0.2  # blob 1's seeds are weak: it scores lowest
    config = DecodeConfig(min_size=5, overlap=False, merge_threshold=0, kernel_threshold=0.4, min_seed=0.1)
    every = decode(psi, fg, seed, 1.5, config)
    assert len(every.instances) == 3
    cut = float(np.sort(every.scores)[1])  # between the weak blob's score and the others'
    kept = decode(psi, fg, seed, 1.5, DecodeConfig(**{**config.__dict__, "min_score": cut}))
    assert len(kept.instances) == 2 and np.all(kept.scores >= cut)
    assert not kept.instances[:, 10:18, 2:12].any() and kept.labels[10:18, 2:12].max() == 0  # blob 1 gone
    assert set(np.unique(kept.labels)) == {0, 1, 2}  # the others keep consecutive ids


def test_a_worm_is_given_the_patch_pixels_within_reach_of_its_own_as_a_whole_image_distance_says():
    from scipy import ndimage as ndi

    from napari_semiconv.decode import _near

    h, w = 80, 120
    given = np.zeros((2, h, w), bool)
    given[:, 40:42, 30:70] = True  # a band of patch pixels given to both worms
    own = np.zeros((2, h, w), bool)
    own[0, 31, 35] = own[0, 50, 65] = own[0, 40, 21] = True  # each exactly 9 px from one band pixel: (40, 35) /
    # (41, 65) across the band, (40, 30) beyond its end
    own[:, 5, 100] = own[:, 75, 5] = True  # far from it
    idx = torch.from_numpy(np.flatnonzero((own | given).any(0)))
    near = _near(torch.from_numpy(own.reshape(2, -1)[:, idx.numpy()]),
                 torch.from_numpy(given.reshape(2, -1)[:, idx.numpy()]), idx, (h, w), 9.0).numpy()
    grid = np.zeros((2, h * w), bool)
    grid[:, idx.numpy()] = near
    assert np.array_equal(np.argwhere(grid[0].reshape(h, w)), [[40, 30], [40, 35], [41, 65]]) and not grid[1].any()
    for k in range(2):
        assert np.array_equal(grid[k].reshape(h, w), (ndi.distance_transform_edt(~own[k]) <= 9.0) & given[k])
