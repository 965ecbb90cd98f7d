"""The shipped default model on fresh held-out scenes (seeds never used in training)."""

import json

import numpy as np
import pytest
import tifffile

from napari_semiconv.cli import main
from napari_semiconv.data.sources import TEST_SEED0
from napari_semiconv.data.synthetic import SceneConfig, make_scene
from napari_semiconv.metrics import iou_matrix, s_score
from napari_semiconv.models import DEFAULT_MODEL


def test_card_and_size():
    card = json.loads(DEFAULT_MODEL.with_suffix(".json").read_text())
    assert DEFAULT_MODEL.stat().st_size < 10e6 and card["steps"] > 0 and "validation" in card


@pytest.mark.parametrize("style", ["brightfield", "fluorescence"])
def test_segment_without_model_uses_shipped_one(tmp_path, style):
    scene = make_scene(TEST_SEED0 + 4242 + (style == "fluorescence"), SceneConfig(style=style, worms=(14, 14)))
    tifffile.imwrite(tmp_path / "scene.tif", scene.image)
    assert main(["segment", str(tmp_path / "scene.tif"), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    stack = tifffile.imread(tmp_path / "out" / "scene_instances.tif").astype(bool)
    n_gt = len(scene.instances)
    assert 0.4 * n_gt <= len(stack) <= 1.6 * n_gt
    best = iou_matrix(stack, scene.instances).max(0)  # best IoU of each true worm
    assert np.median(best) > 0.3
    assert s_score(stack, scene.instances, 0.5) > 0.1
