"""Fit the crossing painter (:mod:`napari_semiconv.painting`) on a model's decoded training scenes; choose its threshold
on validation scenes.

    python benchmarks/fit_painter.py [--model M] [--train 150] [--seconds 600] [--scenes 40] [--write]

The model decodes ``--train`` synthetic scenes per style drawn with training seeds (PAINT_SEED0 + i, apart from the
rescorer's and the joiner's) as it ships (its thresholds, joiner, rescorer and choice; no painter). Each decoded worm
matched one-to-one to a true worm (IoU > 0.5) gives one example per patch it holds pixels of (:func:`painting.windows`):
the painter's input window and, on the patch's pixels, whether the true worm holds them. The
:class:`~painting.PainterNet` trains on them for ``--seconds`` (AdamW, batches of 32, random flips and quarter turns,
binary cross-entropy over the patch's pixels). Its threshold is chosen on ``--scenes`` validation scenes per style
(fit_rescorer.py's validation fields, seeds VAL_SEED0 + 8000 + i) by avS against the decoder without painter and the
oracle (each found worm given the patch pixels of the true worm it matches). ``--write`` stores the painter in the
model file. ``--cache FILE`` keeps the collected examples (and reads them when the file exists). Writes a section of
docs/benchmarks.md.
"""

import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from napari_semiconv.data.sources import TRAIN_SEEDS, VAL_SEED0, validation_scenes
from napari_semiconv.decode import model_decode_config
from napari_semiconv.metrics import evaluate, matches
from napari_semiconv.painting import CHANNELS, Painter, PainterNet, crops, targets, windows
from napari_semiconv.registry import resolve_model
from napari_semiconv.segment import decode_outputs
from napari_semiconv.threshold_search import forward_all

PAINT_SEED0 = TRAIN_SEEDS - 3 * 10**6  # training seeds apart from the rescorer's and the joiner's (the count refiner's
# examples were drawn from these too: its counts are a little cleaner there than on new fields)
STYLES = ("brightfield", "fluorescence")
THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7)


def matched(found: np.ndarray, truth: np.ndarray) -> list[tuple[int, int]]:
    """One-to-one (found, true) index pairs at IoU > 0.5 of ``found (N, H, W)`` and ``truth (M, H, W)`` bool."""
    return [(int(i), j) for j, i in enumerate(matches(found, truth)) if i >= 0]


def multi_of(out: dict, config) -> np.ndarray:
    """``(H, W) bool``: the pixels the decoder counts 2+ (foreground and counted 2+)."""
    return ((out["count"] >= 2) & (out["fg"] > config.fg_threshold)).cpu().numpy()


def examples(outputs, scenes, config) -> tuple[torch.Tensor, torch.Tensor]:
    """Painter inputs ``(M, C, CROP, CROP)`` float16 and targets ``(M, CROP, CROP)`` float16 (1: the true worm's)."""
    xs, ys = [], []
    for out, scene in zip(outputs, scenes):
        d, multi = decode_outputs(out, config), multi_of(out, config)
        pairs = matched(d.instances, scene.instances)
        if not pairs:
            continue
        found = np.array([i for i, _ in pairs])
        win = windows(d.instances, multi, config.pixel_scale)
        take = np.isin(win.worm, found)
        if not take.any():
            continue
        win = replace(win, worm=win.worm[take], patch=win.patch[take], corner=win.corner[take])
        xs.append(crops(d.instances, multi, (out["fg"] > config.fg_threshold).cpu().numpy(),
                        out["image"].cpu().numpy(), win).half())
        true_of = dict(pairs)
        target = np.stack([scene.instances[true_of[k]] for k in win.worm])  # (M, H, W)
        ys.append(targets(target, win).half())
    return torch.cat(xs), torch.cat(ys)


def train_painter(x: torch.Tensor, y: torch.Tensor, seconds: float, seed: int = 0,
                  region: torch.Tensor | None = None) -> PainterNet:
    """A :class:`PainterNet` trained on inputs ``x`` and targets ``y`` for ``seconds``, the loss on the pixels of
    ``region (M, CROP, CROP)`` (default: the patch's pixels)."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    net = PainterNet()
    opt = torch.optim.AdamW(net.parameters(), 2e-3, weight_decay=1e-4)
    start, step = time.perf_counter(), 0
    patch = CHANNELS.index("patch")
    while time.perf_counter() - start < seconds:
        idx = torch.randint(len(x), (32,), generator=gen)
        k = int(torch.randint(4, (1,), generator=gen))
        xb, yb = torch.rot90(x[idx].float(), k, (2, 3)), torch.rot90(y[idx].float(), k, (1, 2))
        mask = xb[:, patch] if region is None else torch.rot90(region[idx].float(), k, (1, 2))
        if torch.rand(1, generator=gen) < 0.5:
            xb, yb, mask = torch.flip(xb, (3,)), torch.flip(yb, (2,)), torch.flip(mask, (2,))
        loss = (F.binary_cross_entropy_with_logits(net(xb), yb, reduction="none") * mask).sum() / mask.sum().clamp_min(1)
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        if step % 200 == 0:
            print(f"step {step} loss {loss.item():.4f} ({time.perf_counter() - start:.0f} s)", flush=True)
    return net.eval()


def oracle(decoded, outputs, scenes, config) -> dict:
    """avS etc. when each found worm of ``decoded`` (the fields decoded with ``config``) is given the patch pixels of
    the true worm it matches (others as decoded)."""
    stacks = []
    for d, out, scene in zip(decoded, outputs, scenes):
        multi, fixed = multi_of(out, config), d.instances.copy()
        for i, j in matched(d.instances, scene.instances):
            fixed[i] = (fixed[i] & ~multi) | (multi & scene.instances[j])
        stacks.append(fixed)
    return evaluate(stacks, [d.scores for d in decoded], [s.instances for s in scenes])


def scored(decoded, scenes) -> dict:
    return evaluate([d.instances for d in decoded], [d.scores for d in decoded], [s.instances for s in scenes])


def main(argv=None):
    from report import chosen, model_name, model_parser, publish_model_section, store_part, style_table

    ap = model_parser(__doc__)
    ap.add_argument("--train", type=int, default=150, help="training scenes per style")
    ap.add_argument("--seconds", type=float, default=600.0, help="training time of the painter")
    ap.add_argument("--scenes", type=int, default=40, help="validation scenes per style to choose the threshold on")
    ap.add_argument("--cache", help="file of the collected examples (read when it exists, else written)")
    ap.add_argument("--write", action="store_true", help="store the painter in the model file")
    args = ap.parse_args(argv)
    if args.write and not args.model:
        ap.error("--write needs --model: the file to store the painter in (a copy of the shipped model)")
    torch.set_num_threads(2)
    model = resolve_model(args.model, args.device)
    config = replace(model_decode_config(model), painter=None)
    if args.cache and Path(args.cache).exists():
        x, y = torch.load(args.cache, weights_only=True)
    else:
        x, y = [], []
        for i, style in enumerate(STYLES):
            for start in range(0, args.train, 25):  # 25 scenes' outputs at a time
                scenes = validation_scenes(min(25, args.train - start), style, seed0=PAINT_SEED0 + 10**5 * i + start)
                xi, yi = examples(forward_all(model, [s.image for s in scenes]), scenes, config)
                x.append(xi)
                y.append(yi)
                print(f"{style} {start + len(scenes)} scenes: {sum(len(v) for v in x)} examples", flush=True)
        x, y = torch.cat(x), torch.cat(y)
        if args.cache:
            torch.save((x, y), args.cache)
    net = train_painter(x, y, args.seconds)
    rows = {}
    for i, style in enumerate(STYLES):
        scenes = validation_scenes(args.scenes, style, seed0=VAL_SEED0 + 8000 + 1000 * i)
        outputs = forward_all(model, [s.image for s in scenes])
        plain = [decode_outputs(o, config) for o in outputs]  # the reach rule's decoding, once for two rows
        rows[style] = [scored(plain, scenes)] + [
            scored([decode_outputs(o, replace(config, painter=Painter(net, t))) for o in outputs], scenes)
            for t in THRESHOLDS] + [oracle(plain, outputs, scenes, config)]
        print(style, " ".join(f"{r['avS']:.3f}" for r in rows[style]), flush=True)
    best = chosen(rows, len(THRESHOLDS))
    names = ["none (each worm given the patch pixels within reach of its own)"] + [
        f"painter, probability >= {t}" for t in THRESHOLDS] + ["oracle (the true worm's patch pixels)"]
    lines = style_table("crossing pixels", names, rows, ("avS", "S@0.5", "S@0.9"))
    if args.write:
        store_part(args.model, model, "painter", Painter(net.cpu(), THRESHOLDS[best]).to_metadata(), {
            "channels": list(CHANNELS), "threshold": THRESHOLDS[best], "trained_on": f"{len(x)} worm-patch pairs "
            f"of {args.train} training scenes per style, {args.seconds:.0f} s"})
    publish_model_section(
        args, "## Painting the crossings",
        f"Model `{model_name(model)}`; painter trained {args.seconds:.0f} s on the {len(x)} worm-patch pairs of "
        f"{args.train} training scenes per style, scored on {args.scenes} validation scenes per style (seeds "
        "VAL_SEED0 + 8000 + i), the model's decoding otherwise. Threshold chosen: "
        f"{THRESHOLDS[best]}{' (written to the model file)' if args.write else ''}.\n\n" + "\n".join(lines),
        "fit_painter.py", f"--train {args.train} --seconds {args.seconds:.0f} --scenes {args.scenes}")


if __name__ == "__main__":
    main()
