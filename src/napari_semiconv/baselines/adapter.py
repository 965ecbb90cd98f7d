"""A Mask R-CNN baseline file as a segmenter: what ``segment --model FILE`` and the Segment dock load.

The CLI, batch and the Segment dock all segment through :func:`napari_semiconv.segment.segment_iter`,
which hands a model that has its own ``segment_iter`` (a :class:`BaselineSegmenter`) the plane. It
gives the same :class:`~napari_semiconv.segment.Result` as our U-Net models, so the labels image, the
``(N, H, W)`` instance stack, the scores and the files and measurements made from them follow
unchanged. What a Mask R-CNN has no notion of is absent (``None``): no displacement field (the dock's
displacement layer stays empty), no embedding (nothing to Inspect), no seed map, no kernel bandwidth;
``Result.absent`` says so to the user.

This module imports without torchvision (torch and numpy only): :func:`is_baseline_file` tells a
baseline file by its header, and :func:`load_segmenter` refuses one, saying what to install, where
torchvision cannot be imported.
"""

import os
from collections.abc import Iterator

import numpy as np
import torch

from ..decode import DecodeConfig
from ..errors import SemiconvError
from ..instances import Instances
from ..segment import Progress, Result, SegmentConfig

FORMAT = "napari-semiconv-maskrcnn/1"  # the header of baseline model files (.io)
INSTALL = ('pip install "napari-semiconv[baselines]" in a venv of its own (the extra pins torch==2.14.1 with '
           "torchvision==0.29.1)")
ABSENT = ("a Mask R-CNN baseline gives worms and scores only: no displacement arrows, embedding (Inspect) or "
          "seed map")


def file_format(path: str | os.PathLike) -> str | None:
    """The ``format`` header of the torch file at ``path``; None where it is unreadable or has none.

    Read weights-only and memory-mapped (the weights are not read), so telling the kind of a model file
    costs little; the loader then chosen reports what is wrong with a bad file.
    """
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001, not a (zip) torch file, or not safely loadable: not a baseline file
        return None
    return payload.get("format") if isinstance(payload, dict) else None


def is_baseline_file(path: str | os.PathLike) -> bool:
    """True where ``path`` is a file with the baseline header :data:`FORMAT`."""
    return os.path.isfile(path) and file_format(path) == FORMAT


def load_segmenter(path: str | os.PathLike, device: torch.device | str = "cpu") -> "BaselineSegmenter":
    """The baseline stored at ``path`` on ``device``, as a :class:`BaselineSegmenter`.

    Raises SemiconvError where torchvision cannot be imported (saying what the file is and what to
    install), and for a bad file (:func:`.io.load_baseline`).
    """
    try:
        from .io import load_baseline
    except (ImportError, RuntimeError, OSError) as exc:  # missing, or a build that does not match this torch
        raise SemiconvError(
            f"{path} is a Mask R-CNN baseline model ('{FORMAT}' header), which needs torchvision, and torchvision "
            f"cannot be imported here ({type(exc).__name__}: {exc}). To segment with it: {INSTALL}, and run "
            "napari-semiconv from that venv; or pass a napari-semiconv model (omit --model for the shipped one)"
        ) from None
    return BaselineSegmenter(load_baseline(path, device))


def stack_labels(masks: np.ndarray) -> np.ndarray:
    """``(N, H, W)`` bool masks, best first -> ``(H, W)`` labels: each pixel the id ``i + 1`` of the first
    mask covering it, 0 where none does; uint16 (uint32 beyond 65,535 masks)."""
    labels = np.zeros(masks.shape[1:], np.uint16 if len(masks) < 2**16 else np.uint32)
    if len(masks):
        covered = masks.any(0)
        labels[covered] = masks.argmax(0)[covered] + 1
    return labels


def central_pixels(instances: Instances) -> np.ndarray:
    """``(N, 2)`` int64 (row, col) of each (non-empty) mask's pixel nearest its centroid."""
    out = np.zeros((len(instances), 2), np.int64)
    for i, (crop, box) in enumerate(zip(instances.crops, instances.boxes)):
        pts = np.argwhere(crop)
        out[i] = pts[np.argmin(((pts - pts.mean(0)) ** 2).sum(1))] + box[:2]
    return out


class BaselineSegmenter:
    """A Mask R-CNN baseline behind the interface the CLI, batch and Segment dock use.

    ``model``: the torchvision ``MaskRCNN`` (``model.config`` a :class:`~.maskrcnn.BaselineConfig`);
    ``metadata``: its file's (with ``path``); :meth:`segment_iter` as :func:`~napari_semiconv.segment.segment_iter`.
    """

    def __init__(self, model: torch.nn.Module):
        self.model = model
        self.config = model.config
        self.metadata = model.metadata

    def __repr__(self) -> str:
        kind = "semi-convolutional Mask R-CNN" if self.config.semiconv is not None else "Mask R-CNN"
        return f"<{kind} baseline ({self.config.input} input) from {self.metadata.get('path')}>"

    def segment_iter(self, image: np.ndarray, config: SegmentConfig) -> Iterator[Progress | Result]:
        """Segment one ``(H, W)`` plane: yields Progress, then the Result (last item).

        Keeps the detections scoring at least the model's stored threshold, each mask at its mask
        threshold (:func:`.predict.predict`), and of those the worms of ``config.decode.min_size`` px or
        more; with ``config.decode.overlap`` False each pixel keeps only its best-scoring worm. The
        Result holds ``labels`` (H, W) (each pixel the id of the best-scoring worm covering it), the
        ``(N, H, W)`` ``instances`` (overlaps kept), ``scores`` (N,) float32, best first, ``seeds`` (N, 2)
        (each worm's pixel nearest its centroid) and ``foreground`` (H, W) float32, the union of the worms
        (0 or 1); the seed map, displacement, embedding and bandwidth are absent (None / nan).

        The other decoder settings do not apply. The plane is run whole (no tiles; at most the
        model's ``detections`` worms); ``config.binary`` must match the model's input, and TTA and a worm
        width are refused (the model sees images at its training scale).
        """
        binary = self.config.input == "binary"
        if config.binary != binary:
            raise SemiconvError(
                "this Mask R-CNN baseline was trained on binary foreground masks: segment such masks with "
                "--binary ('binary foreground input' in the dock)" if binary else
                "this Mask R-CNN baseline was trained on bright-field images: segment images without --binary "
                "('binary foreground input' in the dock), or use a model trained on binary masks")
        if config.tta or config.worm_width > 0:
            raise SemiconvError("a Mask R-CNN baseline runs at its training scale without test-time augmentation: "
                                "segment without --tta and --worm-width (0 in the dock)")
        from .predict import predict

        decode = config.decode or DecodeConfig()
        masks, scores = predict(self.model, image)  # (N, H, W) bool, (N,) float32, best first
        keep = masks.sum((1, 2)) >= decode.min_size
        masks, scores = masks[keep], scores[keep]
        labels = stack_labels(masks)
        if not decode.overlap:  # one worm per pixel: each keeps its pixels in the labels image
            masks = labels[None] == np.arange(1, len(masks) + 1)[:, None, None]
            keep = masks.any((1, 2))
            masks, scores = masks[keep], scores[keep]
            labels = stack_labels(masks)
        yield Progress("network", 1, 1)
        instances = Instances.from_stack(masks)
        yield Result(labels=labels, instances=instances, scores=scores, seeds=central_pixels(instances),
                     foreground=masks.any(0).astype(np.float32), seed=None, displacement=None,
                     vote_offset=np.zeros(2, np.float32), embedding=None, sigma=float("nan"),
                     coord_scale=float("nan"), absent=ABSENT)
