"""Fine-tuning on a user's corrected labels, through the shared training loop.

The base model is never modified: fine-tuning trains a deep copy, and only a finished run is
saved (as a new file). Labels > 0 are worms; where a region mask is given, only pixels inside
it count (the annotation is complete there only).
"""

import copy
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from itertools import combinations
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi
from skimage.morphology import convex_hull_image

from . import __version__
from .data.sources import ListSource, MixedSource, SyntheticSource
from .data.synthetic import SceneConfig
from .decode import model_decode_config, model_decoding
from .errors import SemiconvError
from .heads import cache_features, head_losses
from .metrics import as_stack
from .normalize import check_image
from .train import TrainConfig, TrainProgress, recentre_votes, train_iter
from .worm_size import size_scale, trained_worm_width

TRAIN_PARTS = ("heads", "all")
REPLAY_SCENES = 2  # synthetic windows whose features the heads replay (train="heads")
THRESHOLD_GRID = {"kernel_threshold": (0.3, 0.4, 0.5, 0.6), "merge_threshold": (0.0, 0.3), "fg_threshold": (0.5,)}
HOLD_BACK_IMAGE = 3  # annotated images from which one is held back whole (fewer: a part of each)
CLEAR_GAIN = 0.02  # avS on the annotated part by which new thresholds must beat the model's own
# to be adopted: a few worms cannot tell smaller gains from noise (on validation images, thresholds chosen
# on two images and weights passed by a smaller margin did worse on the domain's other images)
WEIGHTS_GAIN = 0.05  # avS on the held-back part by which trained weights must beat size matching alone to be kept:
# issue 15's gain for the training steps; at 0.02, weights that a held-back quarter of two 2x brightfield images let
# through scored 0.165 against 0.360 on the domain's other images (docs/training/history.md, session 26); at 0.05
# weights scoring 0.141 against 0.360 still got through (session 27): with n worms held back one worm is worth ~1/n
# avS, so the gain must also exceed two worms' worth (:func:`weights_gain`)


def weights_gain(stacks: list, regions: list) -> tuple[float, int]:
    """The avS gain trained weights need on the held-back ``regions`` ((H, W) bool each) and the number of annotated
    worms (``stacks``: (N, H, W) bool each) that reach into them: the larger of :data:`WEIGHTS_GAIN` and two worms'
    worth, 2 / n (a part that holds few worms cannot tell better weights from luck)."""
    n = sum(int((stack & region[None]).any((1, 2)).sum()) for stack, region in zip(stacks, regions))
    return max(WEIGHTS_GAIN, 2 / max(n, 1)), n


@dataclass(frozen=True)
class FinetuneConfig:
    """Fine-tuning budget and options."""

    steps: int = 200
    seconds: float = 0.0  # time budget (0 = none)
    lr: float = 3e-3  # chosen on validation images of a shifted domain (docs/benchmarks.md)
    batch: int = 2
    crop: int = 256
    augment: bool = True
    replay: float = 0.25  # share of batches drawn from the synthetic base data
    train: str = "heads"  # "heads": the backbone runs once per image and the heads alone train on its cached
    # features (about 4x the steps per second); "all": the whole network on augmented crops. Chosen on
    # validation images of two shifted domains (benchmarks/finetune.py --validation: all together 0.366 / 0.332
    # against 0.291 / 0.202 for the whole network, whose worse weights the small held-back part let through)
    seed: int = 0
    match_size: bool = True  # the model resizes images so the user's worms look as wide as its training worms
    tune_thresholds: bool = True  # choose the decoder's thresholds on the user's labels after training
    hold_back: float = 0.25  # share of each annotated region kept from training, to choose the thresholds and to
    # judge whether the training steps helped (0 = train on everything; thresholds then chosen on the training images)

    def __post_init__(self):
        if self.train not in TRAIN_PARTS:
            raise SemiconvError(f"unknown part to train {self.train!r}: choose one of {', '.join(TRAIN_PARTS)}")
        if not 0 <= self.hold_back < 1:
            raise SemiconvError(f"the held-back share is {self.hold_back}: give a fraction from 0 (none) to below 1")
        if self.steps < 1 or self.seconds < 0:
            raise SemiconvError(f"fine-tuning needs at least 1 step (got {self.steps}) and a time budget of 0 "
                                f"(none) or more seconds (got {self.seconds})")

    def train_config(self, input_scale: float = 1.0) -> TrainConfig:
        """Training settings; crops grow with ``input_scale`` so the network sees the same context."""
        return TrainConfig(steps=self.steps, seconds=self.seconds, batch=self.batch,
                           crop=2 * round(self.crop * input_scale / 2),
                           lr=self.lr, warmup=10, augment=self.augment, binary_prob=0.0, seed=self.seed,
                           zoom=(0.8, 1.25) if self.augment else (1.0, 1.0))


def check_annotations(images, labels, regions=None):
    """Validate image/label(/region) triplets; return (images, instance stacks, valid masks).

    images : list of (H, W); labels : list of (H, W) int label images; regions : list of
    (H, W) bool masks or None. Raises SemiconvError for RGB/3-D images, shape mismatches,
    nothing painted, or a region with no worm in it.
    """
    if not images:
        raise SemiconvError("choose at least one image with its corrected labels")
    regions = list(regions) if regions is not None else [None] * len(images)
    out_i, out_s, out_v = [], [], []
    for k, (im, lab, reg) in enumerate(zip(images, labels, regions)):
        im = check_image(im, name=f"image {k + 1}")
        lab = np.asarray(lab)
        if lab.shape != im.shape:
            raise SemiconvError(f"labels {k + 1} have shape {lab.shape} but the image {im.shape}: "
                                "paint the labels on a layer of the image's shape")
        if not np.issubdtype(lab.dtype, np.integer) and lab.dtype != bool:
            raise SemiconvError(f"labels {k + 1} have dtype {lab.dtype}: use an integer Labels layer")
        if reg is not None:
            reg = np.asarray(reg, bool)
            if reg.shape != im.shape:
                raise SemiconvError(f"region {k + 1} has shape {reg.shape} but the image {im.shape}")
            if not reg.any():
                raise SemiconvError(f"region {k + 1} is empty: draw where the annotation is complete")
        inside = lab if reg is None else np.where(reg, lab, 0)
        if not (inside > 0).any():
            where = "inside the region" if reg is not None else "in the labels"
            raise SemiconvError(f"no worm painted {where} of image {k + 1}: paint or correct at "
                                "least one worm (label > 0) before fine-tuning")
        stack, unsure = restore_crossings(lab)
        if unsure.any():  # the guessed crossings are not trained on
            reg = ~unsure if reg is None else reg & ~unsure
        out_i.append(im)
        out_s.append(stack)
        out_v.append(reg)
    return out_i, out_s, out_v


def restore_crossings(labels: np.ndarray, margin: int = 3, min_piece: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """A label image's worms, with the part of a worm hidden under another restored where it cuts the worm in two.

    A Labels layer holds one worm per pixel: where two worms cross, the lower one is painted in pieces of one
    id, and as it is, fine-tuning would learn that a crossing is one worm and the pieces are not joined. For two
    pieces (of ``min_piece`` px or more) less than one worm width apart, the hidden part is guessed as the pixels
    of other worms inside the convex hull of the pieces' ends (their pixels within a width of the other piece).
    labels : (H, W) int. Returns the ``(N, H, W)`` bool worms (one per id, restored parts added, so they may
    overlap) and an ``(H, W)`` bool mask of the guessed pixels and ``margin`` px round them, where the annotation
    says too little to train on.
    """
    labels = np.asarray(labels)
    stack = as_stack(labels)
    unsure = np.zeros(labels.shape, bool)
    worms = labels > 0
    for i, mask in enumerate(stack):  # loop over worms; only those in pieces do any work
        pieces, n = ndi.label(mask, np.ones((3, 3)))
        big = np.flatnonzero(ndi.sum_labels(mask, pieces, np.arange(1, n + 1)) >= min_piece) + 1
        if len(big) < 2:
            continue
        width = 2 * ndi.distance_transform_edt(np.pad(mask, 1)).max()
        near = {k: ndi.distance_transform_edt(pieces != k) <= width for k in big}
        for a, b in combinations(big, 2):  # loop over the (few) pairs of pieces
            end_a, end_b = (pieces == a) & near[b], (pieces == b) & near[a]
            if not end_a.any() or not end_b.any():
                continue
            ends = end_a | end_b
            rows, cols = np.nonzero(ends)
            box = slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1)
            hidden = convex_hull_image(ends[box]) & worms[box] & ~mask[box]
            stack[i][box] |= hidden
            unsure[box] |= hidden
    return stack, ndi.binary_dilation(unsure, iterations=margin) if unsure.any() else unsure


def split_held_back(stacks, valid, share: float) -> tuple[list, list]:
    """Split each annotated region into a training part and a held-back part.

    stacks : list of (N, H, W) bool worms; valid : list of (H, W) bool regions (None = the whole image).
    From :data:`HOLD_BACK_IMAGE` annotated images on, the last image is held back whole and the others are
    trained on whole: the trained weights are then judged on worms, lighting and background they never saw
    (judged on unseen worms of the training images, weights that learned those images pass and then do worse on
    other images of the domain). With fewer images, the held-back part is the last ``share`` of each region's
    extent along its longer side; the worms that reach into it are left out of the training part too (a worm
    seen in training would flatter the trained weights on the held-back part). An image is not split (held-back
    part None) when either part would hold no worm pixel. Returns (training regions, held-back regions), lists
    of (H, W) bool or None; a training region with no pixel means the image is not trained on.
    """
    if share > 0 and len(stacks) >= HOLD_BACK_IMAGE:
        last = np.ones(stacks[-1].shape[1:], bool) if valid[-1] is None else valid[-1]
        return list(valid[:-1]) + [np.zeros_like(last)], [None] * (len(stacks) - 1) + [last]
    train, held = [], []
    for ins, reg in zip(stacks, valid):  # loop over the (few) annotated images
        region = np.ones(ins.shape[1:], bool) if reg is None else reg
        axis = int(np.ptp(np.nonzero(region)[1]) >= np.ptp(np.nonzero(region)[0]))  # 1: wider than tall
        extent = np.nonzero(region.any(1 - axis))[0]
        cut = extent[-1] + 1 - max(1, round(share * (extent[-1] + 1 - extent[0])))
        back = region & (np.arange(region.shape[axis]) >= cut)[(slice(None), None) if axis == 0 else None]
        worm = ins.any(0)
        rest = region & ~back & ~ins[(ins & back).any((1, 2))].any(0)
        if share <= 0 or not (worm & back).any() or not (worm & rest).any():
            train.append(reg)
            held.append(None)
        else:
            train.append(rest)
            held.append(back)
    return train, held


def finetune_iter(base, images, labels, regions=None, config: FinetuneConfig = FinetuneConfig(),
                  should_stop: Callable[[], bool] = lambda: False) -> Iterator[TrainProgress | object]:
    """Fine-tune a copy of ``base``. Yields TrainProgress per step, then the new model (last).

    Input is checked before any training starts. ``config.hold_back`` of each annotated region is kept
    from training: the decoder's thresholds are chosen there (kept as they were unless others score
    :data:`CLEAR_GAIN` better), and unless the trained weights score :func:`weights_gain` better there than
    ``base``'s (at the new input scale), the returned model keeps ``base``'s weights (its metadata says so).
    If ``should_stop`` turns true, the run stops and the last item is None: nothing is returned to save and
    ``base`` is untouched.
    """
    imgs, stacks, valid = check_annotations(images, labels, regions)
    train_valid, held = split_held_back(stacks, valid, config.hold_back)
    model = copy.deepcopy(base)
    scale = size_scale(stacks, trained_worm_width(base), base.config.input_scale) if config.match_size else base.config.input_scale
    model.config = replace(model.config, input_scale=scale)
    train_config = config.train_config(scale)
    if model.config.semiconv and model.config.target == "eq5":  # anchored models have no common shift
        recentre_votes(model, imgs[:2])
    trained_on = [i for i, reg in enumerate(train_valid) if reg is None or reg.any()]
    user = ListSource([imgs[i] for i in trained_on], [stacks[i] for i in trained_on], [train_valid[i] for i in trained_on])
    replay = SyntheticSource(train_config.crop, SceneConfig(scale=(scale, scale)))  # base data at the same size
    cancelled = False

    def stop():
        nonlocal cancelled
        cancelled = cancelled or should_stop()
        return cancelled

    if config.train == "all":
        source = MixedSource([user, replay], [1 - config.replay, config.replay]) if config.replay > 0 else user
        yield from train_iter(model, source, train_config, should_stop=stop)
    else:
        yield from _train_heads(model, user, replay, config, train_config, stop)
    if cancelled:
        yield None
        return
    if not config.tune_thresholds:
        model.metadata = {"decode": model_decoding(base), **_learned_parts(base)}
        yield model
        return
    yield keep_or_not(base, model, Annotations(imgs, stacks, valid, held))


def _train_heads(model, user: ListSource, replay: SyntheticSource, config: FinetuneConfig, train_config,
                 should_stop) -> Iterator[TrainProgress]:
    """Train ``model``'s heads alone on its backbone's cached features of the user's images and of a few
    synthetic windows (the replay, at its share of the draws)."""
    rng = np.random.default_rng(config.seed)
    samples = list(zip(user.images, user.instances, user.valid, user.anchors))
    n_replay = REPLAY_SCENES if config.replay > 0 else 0
    samples += [replace(replay, crop=2 * train_config.crop)(rng) for _ in range(n_replay)]  # whole worms
    weights = [(1 - config.replay) / len(user.images)] * len(user.images) + [config.replay / max(n_replay, 1)] * n_replay
    frozen = [p for p in model.backbone.parameters() if p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    try:
        cached = cache_features(model, samples)
        yield from train_iter(model, None, train_config, should_stop=should_stop,
                              step_losses=head_losses(model, cached, train_config, weights))
    finally:
        for p in frozen:
            p.requires_grad_(True)


@dataclass(frozen=True)
class Annotations:
    """The user's annotated images as fine-tuning sees them: (H, W) images, (N, H, W) bool worms, (H, W) bool
    regions where the annotation is complete (or None: everywhere) and the held-back part of each (or None)."""

    images: list
    stacks: list
    valid: list
    held: list

    def scoring(self) -> tuple[list, list, list, str]:
        """(images, worms, regions, what they are) to choose thresholds on: the held-back parts where there
        are any, else the training images (said as such)."""
        keep = [i for i, h in enumerate(self.held) if h is not None]
        if keep:
            return ([self.images[i] for i in keep], [self.stacks[i] for i in keep], [self.held[i] for i in keep],
                    f"the held-back part of {len(keep)} annotated image(s), not trained on")
        return (self.images, self.stacks, self.valid,
                f"the {len(self.images)} annotated image(s) fine-tuning learned from (nothing to hold back)")


def keep_or_not(base, trained, annotations: Annotations):
    """``trained`` with the decoder thresholds chosen on the held-back annotations, or, where its weights do not
    score :func:`weights_gain` better there than ``base``'s seeing the images at the same size, ``base``'s weights
    at that size with their own chosen thresholds. The returned model's metadata says which, and the avS of each."""
    from .threshold_search import forward_all

    images, stacks, regions, scored_on = annotations.scoring()
    base_outputs = forward_all(base, images)  # the "before" of both comparisons below
    chosen = choose_thresholds(base, trained, images, stacks, regions, base_outputs)
    gain = chosen["user_images"]
    if "finetuned_avS" in gain:  # scored (else it says why not)
        gain["scored_on"] = scored_on
        if any(h is not None for h in annotations.held):  # a verdict on the steps needs a part they did not see
            sized = base.with_input_scale(trained.config.input_scale)
            plain = choose_thresholds(base, sized, images, stacks, regions, base_outputs)
            needed, held_worms = weights_gain(stacks, regions)
            if plain["user_images"].get("finetuned_avS", -1.0) + needed > gain["finetuned_avS"]:
                sized.metadata = {**plain, "training_kept": False, "user_images": {
                    **plain["user_images"], "scored_on": scored_on, "trained_avS": gain["finetuned_avS"],
                    "needed_gain": round(needed, 3), "held_worms": held_worms}}
                return sized
    trained.metadata = {**chosen, "training_kept": True}
    return trained


def _learned_parts(base) -> dict:
    """``base``'s instance rescorer, a piece model's joiner and the crossing painter as metadata entries (those it
    has): a fine-tuned model keeps them, as its score cut was chosen with them and its network still finds pieces."""
    stored = getattr(base, "metadata", {})
    return {k: stored[k] for k in ("rescorer", "joiner", "painter") if stored.get(k)}


def choose_thresholds(base, model, images, stacks, valid, base_outputs: list | None = None) -> dict:
    """Choose ``model``'s decoder thresholds on annotated images and say what it gains there over ``base`` at
    its own thresholds (``base_outputs``: ``base``'s forwards of ``images`` where already run).

    Returns metadata entries: ``decode`` (the thresholds), ``rescorer`` (``base``'s, if any), ``user_images`` (avS
    of base and of ``model``).
    """
    from .threshold_search import forward_all, search_thresholds

    # the base model's score cut (a choice between it and none, made when the rescorer read a resized model's sizes
    # in image pixels, raised AP and lowered avS on other images of a shifted domain: docs/training/history.md)
    base_config = model_decode_config(base)
    grid = {**THRESHOLD_GRID, "min_score": (base_config.min_score,)}
    base_thresholds = {k: getattr(base_config, k) for k in grid}
    kept = model_decoding(base)  # what the grid does not choose (the pool) stays as the base model has it
    outputs = forward_all(model, images)
    if np.mean([float((o["fg"] > 0.5).float().mean()) for o in outputs]) > 0.5:
        # a model that sees worms nearly everywhere: no threshold helps, and decoding it is slow
        return {"decode": {**kept, **base_thresholds}, **_learned_parts(base), "user_images": {"scored_on": "not scored: the model marks most pixels "
                                                                       "as worm"}}
    only_base = {k: (v,) for k, v in base_thresholds.items()}  # a grid of one point
    base_outputs = forward_all(base, images) if base_outputs is None else base_outputs
    before = search_thresholds(base_outputs, stacks, only_base, valid, base_config)[0][0]
    at_base = search_thresholds(outputs, stacks, only_base, valid, base_config)[0][0]
    best_avs, _, best = search_thresholds(outputs, stacks, grid, valid, base_config)[0]
    if best_avs < at_base + CLEAR_GAIN:
        best_avs, best = at_base, base_thresholds
    return {"decode": {**kept, **best}, **_learned_parts(base), "user_images": {
        "base_avS": round(before, 4), "finetuned_avS_base_thresholds": round(at_base, 4),
        "finetuned_avS": round(best_avs, 4)}}


def finetune(base, images, labels, regions=None, config: FinetuneConfig = FinetuneConfig(),
             progress: Callable[[TrainProgress], None] = lambda p: None):
    """:func:`finetune_iter` run to the end -> (fine-tuned model, last TrainProgress or None if no step ran).

    ``progress`` is called with every step's TrainProgress.
    """
    last, model = None, None
    for item in finetune_iter(base, images, labels, regions, config):
        if isinstance(item, TrainProgress):
            last = item
            progress(item)
        else:
            model = item
    return model, last


def finetune_summary(meta: dict) -> str:
    """One line saying what a fine-tuning did and gained (from its metadata), for the dock and the CLI."""
    what = " of the heads alone (on cached features)" if meta.get("train") == "heads" else ""
    parts = [f"{meta['steps']} training steps{what} in {meta['seconds']:.0f} s"]
    if meta.get("input_scale", 1.0) != meta.get("base_input_scale", 1.0):
        parts.append(f"images resized for worms {meta['input_scale']:.2f}x as wide as the model's")
    if "base_avS" in meta.get("user_images", {}):
        gain = meta["user_images"]
        parts.append(f"thresholds checked on your labels (kernel {meta['decode']['kernel_threshold']:g}, merge "
                     f"{meta['decode']['merge_threshold']:g}); avS on {gain['scored_on']}: base model "
                     f"{gain['base_avS']:.2f} -> fine-tuned {gain['finetuned_avS']:.2f}")
    if meta.get("training_kept") is False:
        held = meta["user_images"]
        parts.append(f"the trained weights scored {held['trained_avS']:.2f} there, not clearly better "
                     f"(by {held.get('needed_gain', WEIGHTS_GAIN):g}"
                     + (f", two worms' worth of the {held['held_worms']} held back" if "held_worms" in held else "")
                     + "), so the model keeps the base model's weights (with the resizing and thresholds)")
    return "; ".join(parts)


def finetune_metadata(base, model, config: FinetuneConfig, last: TrainProgress | None, image_names) -> dict:
    """Metadata stored with a fine-tuned model."""
    return {"base_model": getattr(base, "metadata", {}).get("path", "unknown"),
            "images": list(image_names), "steps": last.step if last else 0,
            "seconds": round(last.elapsed, 1) if last else 0.0,
            "final_loss": last.losses if last else None, "lr": config.lr, "train": config.train,
            "date": time.strftime("%Y-%m-%d %H:%M:%S"), "version": __version__, "kind": "fine-tuned",
            "input_scale": model.config.input_scale, "base_input_scale": base.config.input_scale,
            **getattr(model, "metadata", {})}


def finetune_to_file(base, images, labels, config: FinetuneConfig, out, regions=None, image_names=(),
                     progress: Callable[[TrainProgress], None] = lambda p: None) -> dict:
    """Fine-tune and save to ``out`` (refused if it is the base model's own file); ``progress`` per step."""
    from .atomic import check_writable
    from .model.io import save_model

    out = check_writable(out)  # before any training time is spent
    base_path = getattr(base, "metadata", {}).get("path")
    if base_path and out.exists() and out.resolve() == Path(base_path).resolve():
        raise SemiconvError(f"{out} is the base model itself: write the fine-tuned model to a new file")
    model, last = finetune(base, images, labels, regions, config, progress)
    meta = finetune_metadata(base, model, config, last, image_names)
    save_model(model, out, meta)
    return meta
