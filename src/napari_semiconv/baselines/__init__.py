"""Propose-and-verify baselines: torchvision's Mask R-CNN and the paper's semi-convolutional Mask R-CNN.

An optional extra (``pip install napari-semiconv[baselines]``, which pins torch 2.14.1 with
torchvision 0.29.1): the plugin never imports this package. Both models are built from scratch
(no pretrained weights), on a ResNet-18-FPN backbone with GroupNorm and a one-channel input, and
run at the image's own pixel scale. ``benchmarks/paper_table.py`` trains and scores them.

- :mod:`.maskrcnn`: the configuration and the builder;
- :mod:`.semiconv`: the embedding head, the per-RoI kernel update and the RoI heads that use them;
- :mod:`.targets`: synthetic scenes -> torchvision inputs and targets (overlaps kept);
- :mod:`.train`: one optimisation step;
- :mod:`.predict`: image -> ``(N, H, W)`` instance stack and scores;
- :mod:`.io`: model files (their own format header, read weights-only).
"""

from .io import FORMAT, load_baseline, read_baseline_file, save_baseline
from .maskrcnn import BaselineConfig, build_baseline
from .predict import predict
from .targets import instance_target, model_input, training_batch
from .train import TrainConfig, make_optimizer, train_step

__all__ = ["FORMAT", "BaselineConfig", "TrainConfig", "build_baseline", "instance_target", "load_baseline",
           "make_optimizer", "model_input", "predict", "read_baseline_file", "save_baseline", "train_step",
           "training_batch"]
