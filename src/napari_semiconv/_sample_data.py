"""Sample data: synthetic worm scenes made on the fly, with their ground truth as Labels."""

from .data.sources import SAMPLE_SEED0
from .data.synthetic import SceneConfig, make_scene


def _scene_layers(style: str, seed: int):
    scene = make_scene(seed, SceneConfig(style=style))
    return [
        (scene.image, {"name": f"worms {style}"}, "image"),
        (scene.labels, {"name": f"worms {style} ground truth", "visible": False}, "labels"),
    ]


def brightfield_scene():
    """A 520 x 696 BBBC010-like brightfield scene (a seed outside the training range) and its ground truth."""
    return _scene_layers("brightfield", SAMPLE_SEED0)


def fluorescence_scene():
    """A 520 x 696 fluorescence scene (a seed outside the training range) and its ground truth."""
    return _scene_layers("fluorescence", SAMPLE_SEED0 + 1)
