"""Worm size against the model's training worms: the input scale (cellpose's "diameter" for worms).

Worms seen at another magnification are wider or narrower than any the model learned on. The model's
``input_scale`` resizes the image by its inverse before the network; this module says which scale a
worm width (px, as the Worm measurements ``mean_width``: area / skeleton length) calls for.
"""

from functools import lru_cache

import numpy as np

from .data.sources import VAL_SEED0
from .data.synthetic import make_scene
from .errors import SemiconvError
from .instances import Instances
from .measure import measure_worms
from .metrics import as_stack

MIN_WIDTH = 3.0  # px: thinner worms leave the network less than a pixel per worm at its resolution
TOLERANCE = 1.25  # the training's scale augmentation (0.8-1.25x): within it the model copes unscaled
SCALE_RANGE = (0.25, 4.0)


def worm_width(stacks: list[np.ndarray]) -> float:
    """Median mean width (px: area / skeleton length) of the worms in ``(N, H, W)`` bool stacks; nan if none."""
    widths = np.concatenate([measure_worms(stack)["mean_width"] for stack in stacks])
    return float(np.median(widths)) if len(widths) else float("nan")


def source_worm_width(source, samples: int = 8, seed: int = 0) -> float:
    """Median mean width (px) of the worms a training ``source`` draws (``samples`` draws, fixed seed), measured
    as a user's label image shows them (a worm under another is cut there), the way fine-tuning measures the
    user's worms, so that both err alike."""
    rng = np.random.default_rng(seed)
    return worm_width([as_stack(Instances.from_stack(source(rng)[1]).paint()) for _ in range(samples)])


@lru_cache(maxsize=1)
def _synthetic_worm_width() -> float:
    """Median mean width (px) of the synthetic training worms, for model files that do not record theirs."""
    return worm_width([make_scene(VAL_SEED0 + 500 + i).instances for i in range(2)])


def trained_worm_width(model) -> float:
    """Width (px) of the worms ``model`` was trained on at input scale 1 (recorded in its file)."""
    return model.config.worm_width or _synthetic_worm_width()


def scale_for_width(width: float, trained_width: float) -> float:
    """``input_scale`` for worms ``width`` px wide (mean width) seen by a model trained on worms
    ``trained_width`` px wide, clipped to 0.25-4. Raises SemiconvError for worms under 3 px."""
    if width < MIN_WIDTH:
        raise SemiconvError(f"worms {width:.1f} px wide are too thin to segment (at least {MIN_WIDTH:.0f} px): "
                            "image them at a higher magnification or enlarge the image")
    return float(np.clip(width / trained_width, *SCALE_RANGE))


def size_scale(stacks: list[np.ndarray], trained_width: float, base_scale: float = 1.0) -> float:
    """``input_scale`` for the worms annotated in ``(N, H, W)`` ``stacks``, for a model trained on
    worms ``trained_width`` px wide.

    Within the training's scale augmentation of ``base_scale`` the base model already copes, and
    ``base_scale`` is kept (also when nothing can be measured).
    """
    width = worm_width(stacks)
    if not np.isfinite(width):
        return base_scale
    scale = scale_for_width(width, trained_width)
    return base_scale if abs(np.log(scale / base_scale)) <= np.log(TOLERANCE) else scale
