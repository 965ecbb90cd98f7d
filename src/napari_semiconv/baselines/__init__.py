"""Propose-and-verify baselines: torchvision's Mask R-CNN and the paper's semi-convolutional Mask R-CNN.

An optional extra (``pip install napari-semiconv[baselines]``, which pins torch 2.14.1 with
torchvision 0.29.1): the plugin imports only :mod:`.adapter`, which needs no torchvision. Both models
are built from scratch (no pretrained weights), on a ResNet-18-FPN backbone with GroupNorm and a
one-channel input, and run at the image's own pixel scale. ``benchmarks/paper_table.py`` trains and scores them.

- :mod:`.maskrcnn`: the configuration and the builder;
- :mod:`.semiconv`: the embedding head, the per-RoI kernel update and the RoI heads that use them;
- :mod:`.targets`: synthetic scenes -> torchvision inputs and targets (overlaps kept);
- :mod:`.train`: one optimisation step;
- :mod:`.predict`: image -> ``(N, H, W)`` instance stack and scores;
- :mod:`.io`: model files (their own format header, read weights-only);
- :mod:`.adapter`: a baseline file as a segmenter for the CLI, batch and Segment dock (``--model``); it
  imports without torchvision, so a baseline file given without it is refused with what to install.

Without torchvision (or with a build that does not import beside this torch) only :mod:`.adapter`
imports; the names below then raise an ImportError that says what to install.
"""

from .adapter import FORMAT, INSTALL

__all__ = ["FORMAT", "BaselineConfig", "TrainConfig", "build_baseline", "instance_target", "load_baseline",
           "make_optimizer", "model_input", "predict", "read_baseline_file", "save_baseline", "train_step",
           "training_batch"]

try:
    from .io import load_baseline, read_baseline_file, save_baseline
    from .maskrcnn import BaselineConfig, build_baseline
    from .predict import predict
    from .targets import instance_target, model_input, training_batch
    from .train import TrainConfig, make_optimizer, train_step
except (ImportError, RuntimeError, OSError) as _exc:  # torchvision missing or broken: .adapter still works
    _MISSING = f"{type(_exc).__name__}: {_exc}"

    def __getattr__(name: str):
        if name in __all__:
            raise ImportError(f"napari_semiconv.baselines.{name} needs torchvision, which cannot be imported here "
                              f"({_MISSING}): {INSTALL}")
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
