"""Sample data: synthetic worm scenes made on the fly, with their ground truth as Labels."""

from .data.synthetic import SceneConfig, make_scene


def _scene_layers(style: str, seed: int):
    scene = make_scene(seed, SceneConfig(style=style))
    return [
        (scene.image, {"name": f"worms {style}"}, "image"),
        (scene.labels, {"name": f"worms {style} ground truth", "visible": False}, "labels"),
    ]


def brightfield_scene():
    """A 520 x 696 BBBC010-like brightfield scene (seed 7) and its ground-truth labels."""
    return _scene_layers("brightfield", 7)


def fluorescence_scene():
    """A 520 x 696 fluorescence scene (seed 8) and its ground-truth labels."""
    return _scene_layers("fluorescence", 8)
