from pathlib import Path

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


def test_recentre_votes_keeps_the_worms():
    import torch

    from napari_semiconv.data.sources import TEST_SEED0
    from napari_semiconv.data.synthetic import make_scene
    from napari_semiconv.model import load_model
    from napari_semiconv.segment import SegmentConfig, segment
    from napari_semiconv.train import recentre_votes

    model = load_model(Path(__file__).parents[1] / "checkpoints" / "eq5.pt")  # an eq5 model: votes may shift
    with torch.no_grad():
        model.phi_head[-1].bias[:2] += torch.tensor([3.0, -2.0])  # votes 192 px right, 128 px up
    image = make_scene(TEST_SEED0 + 99).image
    before = segment(model, image, SegmentConfig(keep_embedding=False))
    shift = recentre_votes(model, [image])
    after = segment(model, image, SegmentConfig(keep_embedding=False))
    scale = model.config.coord_scale
    assert np.allclose(shift - before.vote_offset, 0, atol=1) and abs(shift[1] - 3 * scale) < 20
    assert np.abs(after.vote_offset).max() < 1 and after.labels.max() == before.labels.max()
    # the same worms: only rounding in the shifted Psi may move a pixel that lies on a tie between two of them
    assert np.mean(after.labels != before.labels) < 1e-4
