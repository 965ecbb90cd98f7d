"""The one training loop, for `train`, `finetune` and the Fine-tune widget.

``train_iter`` is a generator: it yields a :class:`TrainProgress` after every step (and after
each validation), checks ``should_stop`` so a caller can cancel, and trains the model in place.
Saving is the caller's business: a cancelled run never touches any file.
"""

import csv
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .data.augment import augment, crop_resize
from .errors import SemiconvError
from .flow import model_flow_target
from .losses import AnchorWeights, FlowWeights, LossWeights, anchor_losses, flow_losses, instance_losses
from .metrics import evaluate
from .model.embedding import pixel_coordinates
from .segment import SegmentConfig, segment


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings."""

    steps: int = 2000
    seconds: float = 0.0  # stop after this wall time too (0 = no limit)
    batch: int = 4
    crop: int = 256
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup: int = 50
    zoom: tuple = (0.8, 1.25)  # scale augmentation range
    augment: bool = True
    binary_prob: float = 0.1  # share of samples shown as binary foreground
    seed: int = 0
    val_every: int = 0  # steps between validations (0 = only at the end if val data given)
    # the repulsive margin is on for training: without it the embedding and sigma shrink together;
    # the centroid term anchors the votes to the worms' centres (a readable displacement field)
    weights: LossWeights = field(default_factory=lambda: LossWeights(margin=1.0, centroid=1.0))
    anchor_weights: AnchorWeights = field(default_factory=AnchorWeights)  # models of the "anchor" target
    flow_weights: FlowWeights = field(default_factory=FlowWeights)  # models of the "flow" target

    def __post_init__(self):
        if self.steps < 1 or self.batch < 1 or self.crop < 16 or self.seconds < 0:
            raise SemiconvError(f"training needs at least 1 step, a batch of 1 and crops of 16 px (got steps "
                                f"{self.steps}, batch {self.batch}, crop {self.crop}, seconds {self.seconds})")


@dataclass
class TrainProgress:
    """State after one step."""

    step: int
    total: int
    losses: dict  # term -> float
    lr: float
    elapsed: float
    val: dict | None = None  # metrics when this step validated
    optimizer: object = field(default=None, repr=False)  # the live optimizer (for checkpoints)


def batch_from(source: Callable, rng, config: TrainConfig):
    """Draw ``config.batch`` samples -> images (B, 1, C, C), lists of instances, valid masks and anchors."""
    imgs, inss, vals, ancs = [], [], [], []
    for _ in range(config.batch):
        image, instances, valid, anchors = source(rng)
        zoom = float(np.exp(rng.uniform(*np.log(config.zoom)))) if config.augment else 1.0
        sample = crop_resize(image, instances, valid, anchors, rng, config.crop, zoom)
        if config.augment:
            sample = augment(*sample, rng, config.binary_prob)
        for dst, item in zip((imgs, inss, vals, ancs), sample):
            dst.append(item)
    return torch.stack(imgs)[:, None], inss, vals, ancs


def batch_losses(model, x: torch.Tensor, inss, vals, ancs, config: TrainConfig) -> list[dict]:
    """The loss terms of each sample of a batch, for the model's kind of target."""
    return output_losses(model, model(x), inss, vals, ancs, config)


def output_losses(model, out, inss, vals, ancs, config: TrainConfig, flows: list | None = None) -> list[dict]:
    """The loss terms of each sample of a batch from the model's outputs ``out`` on it (B samples at (H, W)):
    inss, vals, ancs are per sample the (N, H, W) bool worms, (H, W) bool valid region, (N, 2) anchors.
    flows : per sample the (2, H, W) (paired: (4, H, W)) target flow of a flow model where already made (None: made here
    from the sample's worms and anchors)."""
    device = out.phi.device
    if model.config.target == "flow":
        flows = flows or [torch.from_numpy(model_flow_target(model.config, i.numpy(), a.numpy()))
                          for i, a in zip(inss, ancs)]
        return [flow_losses(out.phi[b], out.count_logit[b], flows[b].to(device), inss[b].to(device),
                            config.flow_weights, vals[b].to(device)) for b in range(len(inss))]
    if model.config.target == "anchor":
        return [anchor_losses(out.psi[b], out.count_logit[b], out.seed_logit[b, 0], out.sigma[b, 0],
                              inss[b].to(device), ancs[b].to(device), model.config.coord_scale,
                              config.anchor_weights, vals[b].to(device)) for b in range(len(inss))]
    coords = (pixel_coordinates(*out.phi.shape[-2:], 2, model.config.coord_scale, device=device)
              if model.config.semiconv else None)
    return [instance_losses(out.psi[b], out.fg_logit[b, 0], out.seed_logit[b, 0], model.sigma,
                            inss[b].to(device), config.weights, vals[b].to(device), coords)
            for b in range(len(inss))]


def validate(model, scenes, config: SegmentConfig | None = None) -> dict:
    """Metrics of ``model`` on scenes (objects with .image and .instances)."""
    config = config or SegmentConfig(keep_embedding=False)
    was_training = model.training
    model.eval()
    results = [segment(model, s.image, config) for s in scenes]
    model.train(was_training)
    return evaluate([r.instances.to_stack() for r in results], [r.scores for r in results],
                    [s.instances for s in scenes])


@torch.no_grad()
def recentre_votes(model, images) -> np.ndarray:
    """Remove ``model``'s common vote shift, measured on ``images`` (list of (H, W)), via its output bias.

    A model trained without the centroid term may vote hundreds of pixels off its worms (eq. 5 is
    blind to a common shift). Shifting Psi by a constant changes no clustering and starts the
    centroid term near its optimum. Returns the removed ``(2,)`` (dy, dx) shift in pixels.
    """
    shift = np.mean([segment(model, im, SegmentConfig(keep_embedding=False)).vote_offset for im in images], 0)
    dy, dx = shift / (model.config.coord_scale * model.config.input_scale)  # the bias is in training-data units
    model.phi_head[-1].bias[:2] -= torch.tensor([dx, dy], dtype=torch.float32, device=model.log_sigma.device)
    return shift


def train_iter(model, source: Callable, config: TrainConfig, val_scenes=None,
               should_stop: Callable[[], bool] = lambda: False, start_step: int = 0,
               optimizer_state: dict | None = None,
               clock: Callable[[], float] = time.perf_counter,
               step_losses: Callable | None = None) -> Iterator[TrainProgress]:
    """Train ``model`` in place on samples from ``source``; yields progress every step.

    ``clock`` (seconds) measures the time budget; tests give a fake one. ``step_losses(rng)``, where given,
    replaces drawing a batch from ``source`` and running the whole model on it: it returns the batch's
    loss terms (a list of dicts, as :func:`batch_losses`); only parameters that require a gradient train.
    """
    device = next(model.parameters()).device
    rng = np.random.default_rng([config.seed, start_step])
    torch.manual_seed(config.seed + start_step)
    if step_losses is None:
        def step_losses(rng):
            x, inss, vals, ancs = batch_from(source, rng, config)
            return batch_losses(model, x.to(device), inss, vals, ancs, config)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.lr, weight_decay=config.weight_decay)
    if optimizer_state:
        opt.load_state_dict(optimizer_state)

    def lr_at(step, elapsed):
        """Warm-up, then a cosine over whichever budget (steps or seconds) runs out first."""
        warm = min(1.0, (step + 1) / max(config.warmup, 1))
        done = max(step / max(config.steps, 1), elapsed / config.seconds if config.seconds else 0.0)
        return config.lr * warm * 0.5 * (1 + math.cos(math.pi * min(done, 1)))

    model.train()
    t0 = clock()
    for step in range(start_step, config.steps):
        elapsed = clock() - t0
        if should_stop() or (config.seconds and elapsed > config.seconds):
            break
        lr = lr_at(step, elapsed)
        for group in opt.param_groups:
            group["lr"] = lr
        # segmenting (validation, or a caller between steps) lays the weights channels-last; training is faster
        # contiguous (a no-op when they are)
        model.to(memory_format=torch.contiguous_format)
        terms = step_losses(rng)
        loss = sum(t["total"] for t in terms) / len(terms)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        losses = {k: float(sum(t[k].detach() for t in terms)) / len(terms) for k in terms[0]}
        losses["sigma"] = model.sigma.item()
        last = step + 1 == config.steps
        val = None
        if val_scenes and ((config.val_every and (step + 1) % config.val_every == 0) or last):
            val = validate(model, val_scenes)
        yield TrainProgress(step + 1, config.steps, losses, lr, clock() - t0, val, opt)
    model.eval()


class TrainLog:
    """A CSV of every step's losses (and validation metrics) plus a PNG curve."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.rows: list[dict] = []

    def add(self, p: TrainProgress) -> None:
        row = {"step": p.step, "lr": p.lr, "seconds": round(p.elapsed, 2), **p.losses}
        row.update({f"val_{k}": v for k, v in (p.val or {}).items()})
        self.rows.append(row)

    def write(self) -> None:
        keys = list(dict.fromkeys(k for r in self.rows for k in r))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "w", newline="") as fh:
            writer = csv.DictWriter(fh, keys)
            writer.writeheader()
            writer.writerows(self.rows)
        self.plot(self.path.with_suffix(".png"))

    def plot(self, png: Path) -> None:
        import matplotlib

        matplotlib.use("Agg", force=False)
        from matplotlib.figure import Figure

        fig = Figure(figsize=(9, 3.5))
        ax1, ax2 = fig.subplots(1, 2)
        steps = np.array([r["step"] for r in self.rows])
        for key in ("total", "embedding", "foreground", "kernel", "seed", "margin", "centroid", "count",
                    "anchor", "mask", "smooth", "flow", "still"):
            vals = np.array([r.get(key, np.nan) for r in self.rows], float)
            k = max(1, len(vals) // 100)
            smooth = np.convolve(vals, np.ones(k) / k, mode="valid")
            ax1.plot(steps[k - 1 :], smooth, label=key)
        ax1.set_yscale("log")
        ax1.set_xlabel("step")
        ax1.set_title("training loss")
        ax1.legend(fontsize=7)
        vrows = [r for r in self.rows if "val_avS" in r]
        if vrows:
            for key in ("val_avS", "val_S@0.5", "val_AP"):
                ax2.plot([r["step"] for r in vrows], [r[key] for r in vrows], "o-", label=key[4:])
            ax2.set_ylim(0, 1)
            ax2.legend(fontsize=7)
        ax2.set_xlabel("step")
        ax2.set_title("validation (held-out synthetic scenes)")
        fig.tight_layout()
        fig.savefig(png, dpi=80)


def train_to_file(model, source: Callable, config: TrainConfig, out: str | Path, *, val_scenes=None,
                  checkpoint_every: int = 200, resume: bool = False, metadata: dict | None = None,
                  progress: Callable[[TrainProgress], None] = lambda p: None) -> dict:
    """Train and write ``out`` (model file), ``out``.ckpt (resumable), ``out``.log.csv/.png.

    Checkpoints are written atomically every ``checkpoint_every`` steps; ``resume=True``
    continues from ``out``.ckpt when it exists. ``out`` itself is written only at the end, so a
    failed or interrupted run never leaves a partial model. Returns the final metadata.
    """
    from .atomic import check_writable
    from .model.io import load_model, read_model_file, save_model

    out = check_writable(out)  # before any training time is spent
    ckpt = out.with_suffix(".ckpt")
    log = TrainLog(out.with_suffix(".log.csv"))
    start, opt_state = 0, None
    if resume and not ckpt.exists():
        raise SemiconvError(f"nothing to resume: no checkpoint {ckpt} (start without resuming)")
    if resume:
        payload = read_model_file(ckpt)
        model.load_state_dict(load_model(ckpt).state_dict())
        start = int(payload["metadata"].get("step", 0))
        opt_state = payload.get("optimizer")
        log.rows = list(payload["metadata"].get("log", []))
    if not model.config.worm_width:  # recorded so that segmentation can match other worm sizes to it
        from dataclasses import replace

        from .worm_size import source_worm_width

        model.config = replace(model.config, worm_width=round(source_worm_width(source), 2))
    last = None
    for p in train_iter(model, source, config, val_scenes, start_step=start, optimizer_state=opt_state):
        log.add(p)
        last = p
        if checkpoint_every and p.step % checkpoint_every == 0 and p.step < config.steps:
            save_model(model, ckpt, {"step": p.step, "log": log.rows},
                       extra={"optimizer": p.optimizer.state_dict()})
        progress(p)
    meta = dict(metadata or {})
    meta.update({"steps": last.step if last else start, "seconds": round(last.elapsed, 1) if last else 0,
                 "final_loss": last.losses if last else None, "validation": last.val if last else None,
                 "date": time.strftime("%Y-%m-%d"), "train_config": _plain(config)})
    save_model(model, out, meta)
    log.write()
    ckpt.unlink(missing_ok=True)
    return meta


def _plain(config) -> dict:
    from dataclasses import asdict

    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(config).items()}
