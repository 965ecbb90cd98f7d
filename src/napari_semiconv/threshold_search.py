"""Choosing the decoder's thresholds on annotated images: the network runs once per image, each threshold
combination then decodes all images and is scored by avS (validation scenes for a shipped model, the user's own
labels for a fine-tuned one)."""

import itertools
from dataclasses import replace

import numpy as np

from .decode import DecodeConfig
from .instances import Instances
from .metrics import evaluate
from .normalize import normalize
from .segment import SegmentConfig, at_training_scale, at_training_size, decode_outputs, predict_iter, shrink_factor

GRID = {"kernel_threshold": (0.15, 0.2, 0.3, 0.4), "merge_threshold": (0.0, 0.15, 0.3),
        "fg_threshold": (0.4, 0.5), "min_score": (0.0, 0.5, 0.6, 0.7, 0.8)}


def forward_all(model, images) -> list[dict]:
    """The network's outputs (see :func:`~napari_semiconv.segment.predict_iter`) for each ``(H, W)`` image, at the
    training size where segmentation shrinks the image (see :func:`_forward`)."""
    return [_forward(model, normalize(im)) for im in images]


def _forward(model, x: np.ndarray) -> dict:
    """:func:`forward_all` for one normalized ``(H, W)`` plane: where segmentation shrinks it
    (:func:`~napari_semiconv.segment.shrink_factor`), the plane resized to the training size as
    :func:`~napari_semiconv.segment.segment_iter` segments it ("scale": that input scale, "plane": (H, W), for
    :func:`search_thresholds`)."""
    if shrink_factor(model) == 1:
        return list(predict_iter(model, x, SegmentConfig(keep_embedding=False)))[-1]
    native, small = at_training_size(model, x)
    out = list(predict_iter(native, small, SegmentConfig(keep_embedding=False)))[-1]
    return {**out, "scale": model.config.input_scale, "plane": x.shape}


def decode_plane(out: dict, config: DecodeConfig) -> tuple:
    """Decode one of :func:`forward_all`'s outputs with ``config`` (sizes in the image's pixels) as
    :func:`~napari_semiconv.segment.segment_iter` decodes -> (``decode.Decoded``, its ``(N, H, W)`` bool instances on
    the image's own pixels)."""
    if "scale" not in out:
        decoded = decode_outputs(out, config)
        return decoded, decoded.instances
    decoded = decode_outputs(out, at_training_scale(config, out["scale"]))
    return decoded, Instances.from_stack(decoded.instances).resized(out["plane"]).to_stack()


def search_thresholds(outputs: list[dict], truths: list[np.ndarray], grid: dict = GRID,
                      valid: list | None = None, base: DecodeConfig | None = None) -> list[tuple[float, float, dict]]:
    """Score every threshold combination of ``grid`` on the forwards ``outputs`` against ``truths`` ((N, H, W)
    bool stacks); ``valid`` (H, W) bool masks limit the scoring to where the annotation is complete; ``base`` (the
    model's :func:`~napari_semiconv.decode.model_decode_config`; None: the defaults) gives the rest: its rescorer scores the instances,
    its joiner joins a piece model's pieces. Returns (avS, S@0.5, thresholds) tuples, best first."""
    valid = valid or [None] * len(truths)
    base = base or DecodeConfig()
    truths = [t if v is None else t & v for t, v in zip(truths, valid)]
    decoding = {k: v for k, v in grid.items() if k != "min_score"}
    rows = []
    for values in itertools.product(*decoding.values()):
        thresholds = dict(zip(decoding, values))
        decoded = [decode_plane(o, replace(base, min_score=0.0, **thresholds)) for o in outputs]
        for cut in grid.get("min_score", (None,)):  # dropping low scores needs no new decoding
            kept = [d.scores >= (cut or 0.0) for d, _ in decoded]
            preds = [f[k] if v is None else f[k] & v for (_, f), k, v in zip(decoded, kept, valid)]
            m = evaluate(preds, [d.scores[k] for (d, _), k in zip(decoded, kept)], truths)
            rows.append((m["avS"], m["S@0.5"], thresholds if cut is None else {**thresholds, "min_score": cut}))
    return sorted(rows, key=lambda r: (-r[0], -r[1]))
