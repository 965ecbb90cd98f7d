"""The paper's C. elegans table on our data: Mask R-CNN, semi-convolutional Mask R-CNN, our semi-conv U-Net.

torchvision does not import beside the project's CPU torch 2.13 wheel: the baselines are the optional
extra ``baselines`` (torch 2.14.1 + torchvision 0.29.1, both installed from the local wheel folders
on these machines), in a venv of their own:

    python3 -m venv /tmp/mrvenv
    /tmp/mrvenv/bin/pip install torch==2.14.1 torchvision==0.29.1
    /tmp/mrvenv/bin/pip install -e '/work/main[baselines]' pytest    # keeps that torch (we need torch>=2.2)
    cd /work/main && OMP_NUM_THREADS=2 /tmp/mrvenv/bin/python benchmarks/paper_table.py --minutes 40 --threads 2
    OMP_NUM_THREADS=2 /tmp/mrvenv/bin/python -m pytest -q tests/test_baselines.py

Protocol, the same for both baselines and both inputs (``--input binary``: the worms' foreground
mask, the paper's protocol; ``brightfield``: the rendered image; both by default):
- built from scratch (no pretrained weights: napari_semiconv.baselines.maskrcnn says which
  backbone and why), trained for ``--minutes`` of wall time each on ``--threads`` CPU threads
  (scene rendering included) with AdamW on batches of random crops of brightfield-style synthetic
  training scenes (seeds below TRAIN_SEEDS; the same scenes for both models); a checkpoint every
  ``--checkpoint-minutes`` in ``--out-dir``, which ``--resume`` continues (a finished model is then only
  scored again);
- the detection score threshold is chosen per model on ``--val-scenes`` validation scenes (seeds
  VAL_SEED0 + i) by avS, and stored in the model file;
- scored on the test scenes of benchmarks/accuracy.py (brightfield, seeds TEST_SEED0 + i) with
  napari_semiconv.metrics.evaluate on each model's (N, H, W) instance stack (Mask R-CNN keeps
  overlapping worms: one mask per detection);
- our U-Net is the shipped default model, decoded as accuracy.py does (instance stack), trained far
  longer (src/napari_semiconv/models/default.json): it is the reference, not an equal-budget entrant.
Seconds per image are in memory, the same for all: normalize, forward, masks or decoding (no files).
Writes the table as its own section of ``--report`` (default docs/benchmarks.md).
"""

import argparse
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from report import REPORT, cpu_name, portable, replace_section

from napari_semiconv.baselines import (
    BaselineConfig,
    TrainConfig,
    build_baseline,
    make_optimizer,
    predict,
    read_baseline_file,
    save_baseline,
    train_step,
    training_batch,
)
from napari_semiconv.baselines.semiconv import SemiConvConfig
from napari_semiconv.data.sources import TEST_SEED0, VAL_SEED0
from napari_semiconv.data.synthetic import SceneConfig, make_scene
from napari_semiconv.decode import model_decode_config
from napari_semiconv.metrics import evaluate
from napari_semiconv.model import load_model
from napari_semiconv.models import DEFAULT_MODEL
from napari_semiconv.segment import SegmentConfig, segment

ROOT = Path(__file__).resolve().parents[1]
HEADING = "Paper table: Mask R-CNN and semi-convolutional Mask R-CNN from scratch, beside our U-Net"
KINDS = {"Mask R-CNN": None, "semi-conv Mask R-CNN": SemiConvConfig()}
SCENES = SceneConfig(style="brightfield")
SCORE_GRID = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
# ../shared/docs/semiconv.md, section 8 (BBBC010, not our scenes; S metrics only: it gives no AP, and no
# numbers for the paper's Mask R-CNN models)
LITERATURE = {
    "PatchPerPix (CVPR 2020, BBBC010, its own split)": {"S@0.5": 0.960, "S@0.7": 0.931, "S@0.9": 0.428, "avS": 0.816},
    "EmbedSeg (MIDL 2021, BBBC010, random split, TTA)": {"S@0.5": 0.966},
}
COLUMNS = ("S@0.5", "S@0.7", "S@0.9", "avS", "AP", "AP50", "AP75")


@dataclass
class Run:
    """One baseline in training: its model, optimizer, progress (steps, seconds, every step's total loss), file."""

    name: str
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    config: TrainConfig
    path: Path
    progress: dict = field(default_factory=lambda: {"steps": 0, "seconds": 0.0, "losses": []})

    def save(self) -> None:
        """Write the model with its optimizer and progress (a checkpoint that is also a model file)."""
        meta = {"train_config": self.config.to_dict(), "steps": self.progress["steps"],
                "minutes": self.progress["seconds"] / 60,
                "data": f"random crops of brightfield-style synthetic training scenes, {self.model.config.input} input"}
        save_baseline(self.model, self.path, meta, {"optimizer": self.optimizer.state_dict(), "progress": self.progress})


def train(name: str, semiconv: SemiConvConfig | None, input_name: str, args) -> Run:
    """Train one baseline until ``args.minutes`` of wall time (continuing its checkpoint with ``--resume``)."""
    tag = f"{input_name}-{'semiconv' if semiconv else 'maskrcnn'}"
    config = TrainConfig(lr=args.lr, batch=args.batch, crop=args.crop)
    torch.manual_seed(args.seed)
    model = build_baseline(BaselineConfig(semiconv=semiconv, input=input_name))
    run = Run(name, model, make_optimizer(model, config), config, Path(args.out_dir) / f"{tag}.pt")
    if args.resume and run.path.is_file():
        payload = read_baseline_file(run.path)
        model.load_state_dict(payload["state_dict"])
        run.optimizer.load_state_dict(payload["optimizer"])
        run.progress = payload["progress"]
        print(f"{name}: resumed {run.path} at step {run.progress['steps']} ({run.progress['seconds'] / 60:.1f} min)")
    progress = run.progress
    rng = np.random.default_rng([args.seed, progress["steps"]])  # the same scenes for both models
    start, saved = time.perf_counter() - progress["seconds"], time.perf_counter()
    while time.perf_counter() - start < args.minutes * 60:
        images, targets = training_batch(rng, config.batch, config.crop, SCENES, input_name == "binary")
        losses = train_step(model, run.optimizer, images, targets, config.clip)
        progress["steps"] += 1
        progress["seconds"] = time.perf_counter() - start
        progress["losses"].append(losses["total"])
        if progress["steps"] % args.log_every == 0:
            terms = ", ".join(f"{k.removeprefix('loss_')} {v:.3f}" for k, v in losses.items())
            print(f"{name} [{tag}] step {progress['steps']}, {progress['seconds'] / 60:.1f} min: {terms}", flush=True)
        if time.perf_counter() - saved > args.checkpoint_minutes * 60:
            run.save()
            saved = time.perf_counter()
    run.save()
    return run


def scenes(seed0: int, n: int, binary: bool) -> tuple[list, list]:
    """``n`` brightfield scenes with seeds ``seed0 + i``: their inputs and (N, H, W) instance stacks."""
    made = [make_scene(seed0 + i, SCENES) for i in range(n)]
    return ([s.instances.any(0).astype(np.uint8) if binary else s.image for s in made], [s.instances for s in made])


def choose_score_threshold(model, images, truths) -> float:
    """The detection score threshold of SCORE_GRID with the best avS on the validation scenes."""
    found = [predict(model, im, score_threshold=0.0) for im in images]
    avs = {t: evaluate([m[s >= t] for m, s in found], [s[s >= t] for _, s in found], truths)["avS"]
           for t in SCORE_GRID}
    return max(avs, key=avs.get)


def score(run, images, truths) -> dict:
    """Metrics of ``run(image) -> (stack, scores)`` over the images, and in-memory seconds per image."""
    run(images[0])  # warm-up
    t0 = time.perf_counter()
    found = [run(im) for im in images]
    metrics = evaluate([m for m, _ in found], [s for _, s in found], truths)
    metrics["s_per_image"] = (time.perf_counter() - t0) / len(images)
    return metrics


def ours(model, binary: bool):
    """The shipped U-Net as ``image -> (stack, scores)``, decoded as benchmarks/accuracy.py does."""
    config = SegmentConfig(decode=model_decode_config(model), binary=binary, keep_embedding=False)

    def run(image):
        result = segment(model, image, config)
        return result.instances.to_stack(), result.scores

    return run


def row(name: str, input_name: str, training: str, m: dict) -> str:
    cells = " | ".join(f"{m[c]:.3f}" if c in m else "–" for c in COLUMNS)
    speed = f"{m['s_per_image']:.2f}" if "s_per_image" in m else "–"
    return f"| {name} | {input_name} | {training} | {m.get('images', '–')} | {cells} | {speed} |"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=40.0, help="training wall time of each model")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    ap.add_argument("--input", choices=("binary", "brightfield", "both"), default="both")
    ap.add_argument("--scenes", type=int, default=20, help="test scenes (brightfield, as accuracy.py)")
    ap.add_argument("--val-scenes", type=int, default=5, help="validation scenes for the score threshold")
    ap.add_argument("--crop", type=int, default=TrainConfig.crop)
    ap.add_argument("--batch", type=int, default=TrainConfig.batch)
    ap.add_argument("--lr", type=float, default=TrainConfig.lr)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--checkpoint-minutes", type=float, default=5.0)
    ap.add_argument("--log-every", type=int, default=25, help="print the losses every this many steps")
    ap.add_argument("--out-dir", default=str(ROOT / "runs" / "paper_table"), help="checkpoints and model files")
    ap.add_argument("--resume", action="store_true", help="continue the checkpoints in --out-dir")
    ap.add_argument("--report", default=str(REPORT))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    unet = load_model(DEFAULT_MODEL)
    lines = ["| model | input | training | n | S@0.5 | S@0.7 | S@0.9 | avS | AP | AP50 | AP75 | s / image |",
             "|---" * 12 + "|"]
    notes = []
    for input_name in (("binary", "brightfield") if args.input == "both" else (args.input,)):
        binary = input_name == "binary"
        val_images, val_truths = scenes(VAL_SEED0, args.val_scenes, binary)
        test_images, test_truths = scenes(TEST_SEED0, args.scenes, binary)
        results = {}
        for name, semiconv in KINDS.items():
            run = train(name, semiconv, input_name, args)
            threshold = choose_score_threshold(run.model, val_images, val_truths)
            run.model.config = replace(run.model.config, score_threshold=threshold)
            run.save()
            results[name] = score(lambda im, m=run.model: predict(m, im), test_images, test_truths)
            losses, progress = run.progress["losses"], run.progress
            k = max(1, min(20, len(losses) // 4))
            training = (f"{progress['steps']} steps, {progress['seconds'] / 60:.1f} min; loss "
                        f"{np.mean(losses[:k]):.2f} -> {np.mean(losses[-k:]):.2f}; score >= {threshold:.1f}")
            lines.append(row(name, input_name, training, results[name]))
        results["ours"] = score(ours(unet, binary), test_images, test_truths)
        lines.append(row("our semi-conv U-Net (shipped default model)", input_name, "see default.json",
                         results["ours"]))
        a, b = results["semi-conv Mask R-CNN"]["AP75"], results["Mask R-CNN"]["AP75"]
        verdict = "holds" if a > b else "does not hold (a tie)" if a == b else "does not hold"
        notes.append(f"{input_name} input: AP75 {a:.3f} (semi-conv Mask R-CNN) vs {b:.3f} (Mask R-CNN): the paper's "
                     f"claim (semi-conv > Mask R-CNN at AP75) {verdict} here.")
    for name, m in LITERATURE.items():
        lines.append(row(f"literature: {name}", "as reported", "reported, not measured here", m))
    machine = f"{cpu_name()}, torch {torch.__version__}"
    section = (f"## {HEADING}\n\n"
               f"Issue 19. Each Mask R-CNN is torchvision's, ResNet-18-FPN with GroupNorm and a 1-channel input, "
               f"built from scratch (no pretrained weights) and trained for {args.minutes:g} min of wall time on "
               f"{args.threads} CPU threads ({machine}), AdamW lr {args.lr:g}, batches of {args.batch} random "
               f"{args.crop} px crops of brightfield-style synthetic scenes (the same for both models). The "
               "semi-convolutional one adds the paper's embedding head (D = 8, gradient into the FPN x 1/10), the "
               "per-RoI kernel update s_hat = s + log K_sigma and the eq. 5 and kernel BCE losses. Test: "
               f"{args.scenes} held-out brightfield scenes (the seeds of benchmarks/accuracy.py), scored on each "
               "model's (N, H, W) instance stack (overlaps kept); the detection score threshold was chosen on "
               f"{args.val_scenes} validation scenes by avS. Our U-Net is the shipped default model (trained far "
               "longer, see src/napari_semiconv/models/default.json: a reference, not an equal-budget entrant). "
               "S(t) = TP/(TP+FP+FN) at IoU > t, avS = mean over t = 0.5..0.9; AP is COCO mask AP (0.50:0.95). "
               "Seconds per image are in memory (normalize, forward, masks or decoding), one image at a time. "
               "Literature rows are reported numbers on BBBC010 (../shared/docs/semiconv.md, section 8), not "
               "measured here and not on our scenes; that summary gives no numbers for the paper's Mask R-CNN "
               "models, so none are listed.\n\n"
               + "\n".join(lines) + "\n\n" + "\n".join(f"- {n}" for n in notes)
               + f"\n\nCommand: `{portable(' '.join(['python', *sys.argv]))}`\n")
    print(section)
    replace_section(Path(args.report), f"## {HEADING}", section)


if __name__ == "__main__":
    main()
