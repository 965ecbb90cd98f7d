"""Training sources: callables that draw one (image, instances, valid, anchors) sample from an rng.

image is (H, W) float32 *normalized*, instances (N, H, W) bool, valid (H, W) bool or None, anchors
(N, 2) float32 (row, col) px, one fixed point on each worm's body (see :mod:`..anchors`).
"""

from dataclasses import dataclass, field

import numpy as np

from ..anchors import medoid_anchors
from ..errors import SemiconvError
from ..normalize import normalize
from .synthetic import FIELD, SceneConfig, make_scene

TRAIN_SEEDS = 10**9  # training scenes use seeds below this; validation and tests above
VAL_SEED0 = 2 * 10**9
TEST_SEED0 = 3 * 10**9
SAMPLE_SEED0 = 4 * 10**9  # the sample data a user opens first: never a training, validation or test scene


@dataclass
class SyntheticSource:
    """Random windows of random synthetic scenes (seeds drawn below TRAIN_SEEDS)."""

    crop: int = 256
    config: SceneConfig = field(default_factory=SceneConfig)

    def __call__(self, rng):
        size = int(self.crop * 1.25)  # room for scale augmentation
        # a window may be larger than the field (magnified worms, big crops): it then reaches past the well
        window = (int(rng.integers(-40, max(FIELD[0] - size + 40, -39))),
                  int(rng.integers(-40, max(FIELD[1] - size + 40, -39))), size, size)
        scene = make_scene(int(rng.integers(TRAIN_SEEDS)), self.config, window=window)
        return normalize(scene.image), scene.instances, None, scene.anchors


@dataclass
class ListSource:
    """Samples drawn uniformly from a list of annotated images (normalized once)."""

    images: list  # of (H, W) arrays, any dtype
    instances: list  # of (N, H, W) bool
    valid: list | None = None  # of (H, W) bool or None
    binary: bool = False

    def __post_init__(self):
        if not self.images:
            raise SemiconvError("no training images: give at least one annotated image")
        if len(self.images) != len(self.instances):
            raise SemiconvError(f"{len(self.images)} images but {len(self.instances)} annotations")
        for i, (im, ins) in enumerate(zip(self.images, self.instances)):
            if np.shape(im) != np.shape(ins)[1:]:
                raise SemiconvError(f"annotation {i} has shape {np.shape(ins)[1:]} but its image "
                                    f"{np.shape(im)}: labels must match the image pixel for pixel")
        self.images = [normalize(im, binary=self.binary) for im in self.images]
        self.valid = self.valid or [None] * len(self.images)
        self.anchors = [medoid_anchors(ins) for ins in self.instances]  # on whole images, before any crop

    def __call__(self, rng):
        i = int(rng.integers(len(self.images)))
        return self.images[i], self.instances[i], self.valid[i], self.anchors[i]


@dataclass
class MixedSource:
    """Draw from ``sources`` with probabilities ``weights`` (e.g. user data + replay)."""

    sources: list
    weights: list

    def __call__(self, rng):
        p = np.asarray(self.weights, float)
        return self.sources[int(rng.choice(len(p), p=p / p.sum()))](rng)


def validation_scenes(n: int, style: str = "random", seed0: int = VAL_SEED0):
    """``n`` full 520 x 696 synthetic scenes with held-out seeds ``seed0 + i``."""
    return [make_scene(seed0 + i, SceneConfig(style=style)) for i in range(n)]
