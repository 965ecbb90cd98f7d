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
    """Masks mapped to another plane size as bilinear interpolation of the dense stack cut at 0.5, box by box."""
    import torch
    import torch.nn.functional as F

    from napari_semiconv.instances import Instances

    stack = make_scene(TEST_SEED0 + 930, SceneConfig(worms=(6, 6))).instances[:, :130, :170]
    stack = np.concatenate([stack, np.zeros((1, 130, 170), bool)])  # an empty mask stays empty
    for shape in ((260, 340), (301, 97), (50, 80)):
        dense = F.interpolate(torch.from_numpy(stack).float()[None], size=shape, mode="bilinear",
                              align_corners=False)[0].numpy() > 0.5
        assert np.array_equal(Instances.from_stack(stack).resized(shape).to_stack(), dense)


def test_a_scaled_model_segments_at_the_training_size(shipped):
    """A model with input scale 2 on an image twice the size of a scene finds the worms the model finds on the
    scene itself (the image is shrunk before the network and the decoder, the Result enlarged back): every result
    map at the image's size, the seeds on their worms, displacements twice as long."""
    import torch
    import torch.nn.functional as F

    scene = make_scene(TEST_SEED0 + 940, SceneConfig(style="brightfield", worms=(8, 8)))
    h, w = scene.image.shape
    big = F.interpolate(torch.from_numpy(scene.image.astype(np.float32))[None, None], size=(2 * h, 2 * w),
                        mode="bilinear", align_corners=False)[0, 0].numpy()
    small = segment(shipped, scene.image)
    seen = segment(shipped.with_input_scale(2.0), big)
    assert seen.labels.shape == seen.foreground.shape == seen.seed.shape == (2 * h, 2 * w)
    assert seen.displacement.shape == (2, 2 * h, 2 * w) and seen.embedding.shape[1:] == (2 * h, 2 * w)
    assert seen.instances.shape == (2 * h, 2 * w)
    stack = seen.instances.to_stack()
    assert all(stack[i, r, c] for i, (r, c) in enumerate(seen.seeds))
    assert abs(len(seen.scores) - len(small.scores)) <= 1
    enlarged = small.instances.resized((2 * h, 2 * w)).to_stack()
    matched = evaluate([stack], [seen.scores], [enlarged])
    assert matched["S@0.5"] > 0.85, matched
    fg = small.foreground > 0.5
    assert np.median(np.abs(seen.displacement[:, ::2, ::2][:, fg])) == pytest.approx(
        2 * np.median(np.abs(small.displacement[:, fg])), rel=0.2)
    assert seen.sigma == pytest.approx(2 * small.sigma)
