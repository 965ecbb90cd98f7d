"""Worm size: the input scale learned from annotations (fine-tuning) or given as a worm width (segment)."""

import numpy as np
import pytest
import tifffile

from napari_semiconv import SemiconvError
from napari_semiconv.cli import main
from napari_semiconv.data.sources import TEST_SEED0
from napari_semiconv.data.synthetic import SceneConfig, make_scene
from napari_semiconv.metrics import evaluate
from napari_semiconv.segment import SegmentConfig, segment
from napari_semiconv.worm_size import size_scale, trained_worm_width


def test_size_scale_measures_the_magnification_of_annotated_worms():
    normal = [make_scene(40 + i).instances for i in range(2)]
    magnified = [make_scene(50 + i, SceneConfig(scale=(1.8, 1.8))).instances for i in range(2)]
    width = 12.5  # px, about the synthetic worms' mean width
    assert size_scale(normal, width) == 1.0  # within the training's scale augmentation: kept
    assert 1.5 < size_scale(magnified, width) < 2.1
    assert size_scale(magnified, width, base_scale=1.8) == 1.8  # a model already at that scale keeps it
    assert size_scale([np.zeros((0, 8, 8), bool)], width, base_scale=1.3) == 1.3  # nothing to measure
    assert 0.45 < size_scale(normal, 1.8 * width) < 0.7  # a model trained on wider worms shrinks these


def test_with_input_scale_is_a_view_sharing_the_weights(shipped):
    view = shipped.with_input_scale(2.0)
    assert shipped.config.input_scale == 1.0 and view.config.input_scale == 2.0
    assert view.backbone is shipped.backbone and view.log_sigma is shipped.log_sigma
    assert view.sigma.item() == pytest.approx(2 * shipped.sigma.item())


def test_worm_width_of_the_training_worms_changes_nothing(shipped):
    scene = make_scene(TEST_SEED0 + 910, SceneConfig(worms=(10, 10)))
    plain = segment(shipped, scene.image, SegmentConfig(keep_embedding=False))
    same = segment(shipped, scene.image, SegmentConfig(keep_embedding=False, worm_width=trained_worm_width(shipped)))
    assert np.array_equal(plain.labels, same.labels)


def test_worm_width_rescues_a_magnified_scene(shipped):
    """At 2x magnification the shipped model finds worms it was not trained at the size of, coarsely; told the
    worms' width it sees them at its own scale and its masks match better (avS; measured 0.24 -> 0.29 here)."""
    scenes = [make_scene(TEST_SEED0 + 920 + i, SceneConfig(style=style, worms=(10, 10), scale=(2.0, 2.0)))
              for i, style in enumerate(("brightfield", "fluorescence") * 2)]
    width = 2.0 * trained_worm_width(shipped)

    def score(config):
        results = [segment(shipped, s.image, config) for s in scenes]
        return evaluate([r.instances.to_stack() for r in results], [r.scores for r in results],
                        [s.instances for s in scenes])["avS"]

    plain = score(SegmentConfig(keep_embedding=False))
    told = score(SegmentConfig(keep_embedding=False, worm_width=width))
    assert told > plain + 0.025, (plain, told)


def test_bad_worm_width(tmp_path, capsys):
    with pytest.raises(SemiconvError, match="worm width"):
        SegmentConfig(worm_width=-2)
    tifffile.imwrite(tmp_path / "a.tif", make_scene(7, window=(0, 0, 64, 64)).image)
    code = main(["segment", str(tmp_path / "a.tif"), "--out", str(tmp_path / "o"), "--worm-width", "-3"])
    assert code == 2 and "worm width" in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_training_records_the_worms_width(tmp_path):
    from napari_semiconv.data.sources import SyntheticSource
    from napari_semiconv.model import build_model, load_model
    from napari_semiconv.model.embedding import ModelConfig
    from napari_semiconv.train import TrainConfig, train_to_file

    model = build_model(ModelConfig(width=4, depth=2, max_width=8))
    train_to_file(model, SyntheticSource(96), TrainConfig(steps=1, batch=1, crop=96), tmp_path / "m.pt")
    stored = load_model(tmp_path / "m.pt").config.worm_width
    assert 9 < stored < 18  # the synthetic worms: 12-20 px wide at the middle, tapered


def test_instances_resized_as_torch_resizes_the_stack():
    """Masks mapped to another plane size as bilinear interpolation of the dense stack cut at 0.5, box by box (at the
    plane's edges too, where torch repeats the outer pixels)."""
    import torch
    import torch.nn.functional as F

    from napari_semiconv.instances import Instances

    stack = make_scene(TEST_SEED0 + 930, SceneConfig(worms=(6, 6))).instances[:, :130, :170]
    corner = np.zeros((1, 130, 170), bool)
    corner[0, :3, :2] = corner[0, -2:, -3:] = True  # masks in the plane's corners
    stack = np.concatenate([stack, corner, np.zeros((1, 130, 170), bool)])  # an empty mask stays empty
    for shape in ((260, 340), (301, 97), (50, 80), (390, 510), (221, 289)):
        dense = F.interpolate(torch.from_numpy(stack).float()[None], size=shape, mode="bilinear",
                              align_corners=False)[0].numpy() > 0.5
        assert np.array_equal(Instances.from_stack(stack).resized(shape).to_stack(), dense), shape


def test_a_scaled_model_segments_at_the_training_size(shipped):
    """A model with input scale 1.7 on an image 1.7x the size of a scene decodes the image shrunk to the training size
    (the same worms and nearly the same scores as the model at scale 1 on that shrunk image) and maps the Result back: every map at
    the image's size, the label image giving each pixel to the worm the decoder gave it, the seeds on their worms,
    displacements 1.7x as long."""
    import torch
    import torch.nn.functional as F

    from napari_semiconv.decode import model_decode_config
    from napari_semiconv.normalize import normalize
    from napari_semiconv.segment import at_training_scale, at_training_size

    scene = make_scene(TEST_SEED0 + 940, SceneConfig(style="brightfield", worms=(24, 24)))
    shape = (round(1.7 * scene.image.shape[0]), round(1.7 * scene.image.shape[1]))
    big = F.interpolate(torch.from_numpy(scene.image.astype(np.float32))[None, None], size=shape,
                        mode="bilinear", align_corners=False)[0, 0].numpy()
    scaled = shipped.with_input_scale(1.7)
    seen = segment(scaled, big)
    native, small = at_training_size(scaled, normalize(big))
    direct = segment(native, small, SegmentConfig(decode=at_training_scale(model_decode_config(native), 1.7)))
    assert len(seen.scores) == len(direct.scores) > 5
    # the same worms in the same order (direct normalizes the shrunk plane again: its pixels move by < 0.01)
    assert np.median(np.abs(seen.scores - direct.scores)) < 0.01 and np.allclose(seen.scores, direct.scores, atol=0.1)
    assert seen.labels.shape == seen.foreground.shape == seen.seed.shape == seen.instances.shape == shape
    assert seen.displacement.shape[1:] == seen.embedding.shape[1:] == shape
    stack = seen.instances.to_stack()
    assert all(stack[i, r, c] for i, (r, c) in enumerate(seen.seeds))
    held = seen.labels > 0
    assert stack[(seen.labels[held] - 1, *np.nonzero(held))].all()  # a labelled pixel is its worm's
    rows = np.minimum((np.arange(shape[0]) / 1.7).astype(int), small.shape[0] - 1)
    cols = np.minimum((np.arange(shape[1]) / 1.7).astype(int), small.shape[1] - 1)
    crossing = stack.sum(0) > 1
    assert crossing.sum() > 1000
    # where worms cross, the label image says what the decoder's own label image says there
    assert np.mean(seen.labels[crossing] == direct.labels[np.ix_(rows, cols)][crossing]) > 0.8  # first worm: 0.44
    fg = direct.foreground > 0.5
    big_fg = fg[np.ix_(rows, cols)]
    assert np.median(np.abs(seen.displacement[:, big_fg])) == pytest.approx(
        1.7 * np.median(np.abs(direct.displacement[:, fg])), rel=0.15)
    assert seen.sigma == pytest.approx(1.7 * direct.sigma)
