import numpy as np

from napari_semiconv.displacement import vote_offset


def test_vote_offset_recovers_the_common_shift():
    labels = np.zeros((40, 60), np.uint16)
    labels[5:15, 5:40] = 1
    labels[20:35, 30:38] = 3  # ids need not be consecutive
    rows, cols = np.mgrid[:40, :60].astype(np.float32)
    shift = np.array([120.0, -45.0], np.float32)
    displacement = np.zeros((2, 40, 60), np.float32)
    for i in (1, 3):  # every pixel votes for its worm's centroid, plus the shift
        m = labels == i
        displacement[0][m] = rows[m].mean() - rows[m] + shift[0]
        displacement[1][m] = cols[m].mean() - cols[m] + shift[1]
    assert np.allclose(vote_offset(displacement, labels), shift, atol=1e-3)
    assert np.allclose(vote_offset(displacement - shift[:, None, None], labels), 0, atol=1e-3)
    assert np.array_equal(vote_offset(displacement, np.zeros_like(labels)), np.zeros(2, np.float32))
