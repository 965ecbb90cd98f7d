"""Train a flow model's count refiner (:mod:`napari_semiconv.model.count_refiner`) on its cached outputs.

    python benchmarks/fit_count_refiner.py [--model M.pt] --out OUT.pt [--train 300] [--seconds 600] [--cosine]
                                           [--scenes 10]

The model (without its refiner, if it has one) runs once on each of ``--train`` synthetic scenes drawn with training
seeds (REFINE_SEED0 + i, both styles at random, one in ten shown as its binary foreground as the network's training
shows them); its full-resolution inputs to the refiner (image, 0 / 1 / 2+ logits, flow) are kept with the true
worms-per-pixel count. The refiner then trains alone for ``--seconds`` (AdamW, learning rate 1e-3, constant from
scratch or with ``--cosine`` falling to 0, as for a continuation; batches of 8 crops of 160 px, 7 in 10 centred
near a crossing, random flips and quarter turns with the flow turned along), starting from the model's own refiner
where it has one. ``--out`` gets the model with the refiner (its joiner and rescorer kept: refit them,
benchmarks/fit_joiner.py then benchmarks/fit_rescorer.py). On ``--scenes`` validation scenes per style (seeds
VAL_SEED0 + 700 + i) the model is decoded with its stored decoder before and after: crossing and foreground IoU of
the argmax count against the truth, avS. Writes a section of docs/benchmarks.md.
"""

import time
from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F

from napari_semiconv.data.sources import TRAIN_SEEDS, VAL_SEED0, validation_scenes
from napari_semiconv.data.synthetic import SceneConfig, make_scene
from napari_semiconv.decode import model_decode_config
from napari_semiconv.errors import SemiconvError
from napari_semiconv.metrics import evaluate
from napari_semiconv.model.embedding import SemiConvNet
from napari_semiconv.model.io import save_model
from napari_semiconv.model.widen import with_count_refiner
from napari_semiconv.normalize import normalize
from napari_semiconv.registry import resolve_model
from napari_semiconv.segment import decode_outputs, dihedral, dihedral_vectors
from napari_semiconv.threshold_search import forward_all

REFINE_SEED0 = TRAIN_SEEDS - 3 * 10**6  # training seeds apart from the joiner's and the rescorer's
CROP, BATCH, NEAR_CROSSING = 160, 8, 0.7
STYLES = ("brightfield", "fluorescence")


def without_refiner(model: SemiConvNet) -> SemiConvNet:
    """``model`` as its count head alone sees things (the same weights, no refiner)."""
    plain = SemiConvNet(replace(model.config, count_refiner=False))
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("count_refiner.")})
    return plain.eval()


@torch.no_grad()
def refiner_inputs(plain: SemiConvNet, image: np.ndarray) -> torch.Tensor:
    """``(6, H, W)`` float32: what the refiner reads for a normalized ``(H, W)`` image (the model at input scale 1)."""
    x = torch.from_numpy(np.ascontiguousarray(image, np.float32))[None, None]
    out = plain(x)
    return torch.cat([x[0], out.count_logit[0], out.phi[0, :2]])


def cached(plain: SemiConvNet, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(n, 6, H, W)`` float16 refiner inputs and ``(n, H, W)`` uint8 true counts (0, 1, 2+) of n training scenes."""
    rng = np.random.default_rng(0)
    xs, ys = [], []
    for i in range(n):  # loop over scenes
        scene = make_scene(REFINE_SEED0 + i, SceneConfig())
        image = scene.instances.any(0).astype(np.float32) if rng.random() < 0.1 else normalize(scene.image)
        xs.append(refiner_inputs(plain, image).half())
        ys.append(torch.from_numpy(scene.instances.sum(0).clip(0, 2).astype(np.uint8)))
    return torch.stack(xs), torch.stack(ys)


def batch(x: torch.Tensor, y: torch.Tensor, crossings: list, rng) -> tuple[torch.Tensor, torch.Tensor]:
    """``(BATCH, 6, CROP, CROP)`` inputs and ``(BATCH, CROP, CROP)`` counts: random crops of the cache, most centred
    near a crossing, each flipped and turned at random (the flow's (dx, dy) turned with it)."""
    xb, yb = [], []
    for _ in range(BATCH):  # loop over the batch's crops
        i = int(rng.integers(len(x)))
        h, w = y[i].shape
        if len(crossings[i]) and rng.random() < NEAR_CROSSING:
            r, c = crossings[i][int(rng.integers(len(crossings[i])))].tolist()
            r, c = r + int(rng.integers(-CROP // 3, CROP // 3)), c + int(rng.integers(-CROP // 3, CROP // 3))
        else:
            r, c = int(rng.integers(h)), int(rng.integers(w))
        r0, c0 = int(np.clip(r - CROP // 2, 0, h - CROP)), int(np.clip(c - CROP // 2, 0, w - CROP))
        xx, yy = x[i, :, r0 : r0 + CROP, c0 : c0 + CROP].float(), y[i, r0 : r0 + CROP, c0 : c0 + CROP].long()
        k, flip = int(rng.integers(4)), bool(rng.integers(2))
        xx, yy = dihedral(xx, k, flip), dihedral(yy, k, flip)
        xx[4:6] = dihedral_vectors(xx[4:6], k, flip)
        xb.append(xx)
        yb.append(yy)
    return torch.stack(xb), torch.stack(yb)


def train_refiner(refiner, x, y, seconds: float, cosine: bool, lr: float = 1e-3) -> tuple[int, list[float]]:
    """Train ``refiner`` in place on the cache for ``seconds``; returns the steps taken and the mean loss of each
    500 steps."""
    opt = torch.optim.AdamW(refiner.parameters(), lr, weight_decay=1e-4)
    rng = np.random.default_rng(1)
    crossings = [torch.nonzero(yy == 2) for yy in y]
    curve, losses, start, step = [], [], time.perf_counter(), 0
    refiner.train()
    while (elapsed := time.perf_counter() - start) < seconds:
        if cosine:
            opt.param_groups[0]["lr"] = lr * 0.5 * (1 + np.cos(np.pi * elapsed / seconds))
        xb, yb = batch(x, y, crossings, rng)
        loss = F.cross_entropy(refiner(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        step += 1
        if step % 500 == 0:
            curve.append(float(np.mean(losses[-500:])))
            print(f"step {step} ({elapsed:.0f} s): loss {curve[-1]:.4f}", flush=True)
    refiner.eval()
    return step, curve


def validation(model, scenes) -> dict:
    """avS of ``model`` with its stored decoder on ``scenes``, and the IoU of its likeliest count (2+, 1+) with the
    truth; one forward per scene serves both."""
    outputs = forward_all(model, [s.image for s in scenes])
    decoded = [decode_outputs(out, model_decode_config(model)) for out in outputs]
    inter, union = np.zeros(2), np.zeros(2)
    for s, out in zip(scenes, outputs):
        count, truth = out["count"].cpu().numpy(), s.instances.sum(0)
        for k, t in enumerate((2, 1)):
            inter[k] += ((count >= t) & (truth >= t)).sum()
            union[k] += ((count >= t) | (truth >= t)).sum()
    e = evaluate([d.instances for d in decoded], [d.scores for d in decoded], [s.instances for s in scenes])
    return {"avS": e["avS"], "S@0.5": e["S@0.5"], "crossing IoU": inter[0] / union[0], "foreground IoU": inter[1] / union[1]}


def main(argv=None):
    from report import model_name, model_parser, publish_model_section

    ap = model_parser(__doc__)
    ap.add_argument("--out", required=True, help="where to write the model with its trained refiner")
    ap.add_argument("--train", type=int, default=300, help="training scenes (both styles at random)")
    ap.add_argument("--seconds", type=float, default=600.0, help="training time of the refiner")
    ap.add_argument("--cosine", action="store_true", help="learning rate falling from 1e-3 to 0 (a continuation)")
    ap.add_argument("--scenes", type=int, default=10, help="validation scenes per style to report on")
    args = ap.parse_args(argv)
    donor = resolve_model(args.model, "cpu")  # the cache and the refiner's training stay on the CPU
    name = model_name(donor)
    if donor.config.target != "flow":
        raise SemiconvError(f"{name} is a {donor.config.target} model: a count refiner reads a flow")
    if donor.config.input_scale != 1:
        raise SemiconvError(f"{name} sees images resized by its input scale {donor.config.input_scale:g} (a fine-tuned "
                            "model): train the refiner on the model it was fine-tuned from")
    model = donor if donor.config.count_refiner else with_count_refiner(donor)
    model.metadata = {k: v for k, v in model.metadata.items() if k != "path"}
    x, y = cached(without_refiner(model), args.train)
    print(f"cached the outputs of {len(x)} training scenes", flush=True)
    scenes = {style: validation_scenes(args.scenes, style, VAL_SEED0 + 700 + 1000 * i) for i, style in enumerate(STYLES)}
    before = {style: validation(donor, s) for style, s in scenes.items()}
    steps, curve = train_refiner(model.count_refiner, x, y, args.seconds, args.cosine)
    after = {style: validation(model, s) for style, s in scenes.items()}
    command = "python benchmarks/fit_count_refiner.py " + " ".join(argv or __import__("sys").argv[1:])
    save_model(model.eval(), args.out, {**model.metadata, "count_refiner": {
        "command": command, "train_scenes": args.train, "seconds": args.seconds, "steps": steps, "loss_per_500_steps": curve}})
    keys = ("avS", "S@0.5", "crossing IoU", "foreground IoU")
    lines = ["| model | style | " + " | ".join(keys) + " |", "|---|---|" + "---|" * len(keys)]
    for name, rows in (("as given", before), ("with the trained refiner", after)):
        lines += [f"| {name} | {style} | " + " | ".join(f"{rows[style][k]:.3f}" for k in keys) + " |" for style in STYLES]
    publish_model_section(
        args, "## A count refiner trained on the model's cached outputs",
        f"Model `{name}`; refiner trained {args.seconds:.0f} s{' (cosine learning rate)' if args.cosine else ''} "
        f"on the outputs of {args.train} training scenes ({steps} steps; loss per 500 steps "
        f"{', '.join(f'{v:.4f}' for v in curve)}), written to `{args.out}`; {args.scenes} validation scenes per style "
        "(seeds VAL_SEED0 + 700 + i), each model with its stored decoder (the donor's joiner and rescorer: refit them "
        "for the refined counts).\n\n" + "\n".join(lines),
        "fit_count_refiner.py", f"--out {args.out} --train {args.train} --seconds {args.seconds:.0f}"
        + (" --cosine" if args.cosine else "") + f" --scenes {args.scenes}")


if __name__ == "__main__":
    main()
