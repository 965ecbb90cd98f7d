"""Measured benefit of fine-tuning on a shifted domain.

    python benchmarks/finetune.py [--seconds 60] [--test 6]

Domain: fluorescence scenes at 1.7x magnification (worms 10-17 px half-width, 250-500 px long),
which the shipped model never saw. Two images of that domain with their (perfect) corrected
labels fine-tune the shipped model for at most --seconds on this machine's CPU; avS is measured
before and after on --test other images of the domain. Writes a section of docs/benchmarks.md.
"""

import argparse
import platform
import resource
import time
from pathlib import Path

import torch

from napari_semiconv.data.sources import TEST_SEED0, VAL_SEED0
from napari_semiconv.data.synthetic import SceneConfig, make_scene
from napari_semiconv.finetune import FinetuneConfig, finetune
from napari_semiconv.registry import resolve_model
from napari_semiconv.train import validate
from napari_semiconv.worm_size import size_scale, trained_worm_width

ROOT = Path(__file__).resolve().parents[1]
DOMAIN = SceneConfig(style="fluorescence", scale=(1.7, 1.7), worms=(6, 12))


def run(base, train, config: FinetuneConfig):
    """Fine-tune ``base`` on the ``train`` scenes -> (model, last TrainProgress or None)."""
    return finetune(base, [s.image for s in train], [s.labels for s in train], config=config)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--test", type=int, default=6)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--lr", type=float, default=FinetuneConfig.lr)
    ap.add_argument("--replay", type=float, default=FinetuneConfig.replay)
    ap.add_argument("--no-match-size", action="store_true", help="keep the base model's input scale")
    ap.add_argument("--validation", action="store_true",
                    help="use validation seeds (to choose --lr/--replay) and print only, no report")
    ap.add_argument("--report", default=str(ROOT / "docs" / "benchmarks.md"))
    args = ap.parse_args(argv)
    base = resolve_model(None, args.device)
    seed0 = VAL_SEED0 if args.validation else TEST_SEED0
    train = [make_scene(seed0 + 5000 + i, DOMAIN) for i in range(2)]
    test = [make_scene(seed0 + 6000 + i, DOMAIN) for i in range(args.test)]
    before = validate(base, test)
    config = FinetuneConfig(steps=10_000, seconds=args.seconds, lr=args.lr, replay=args.replay,
                            match_size=not args.no_match_size)
    # the size matching alone, no training step: the scale fine-tuning would set from the labels
    scale = size_scale([s.instances for s in train], trained_worm_width(base), base.config.input_scale)
    sized = base.with_input_scale(scale)
    t0 = time.perf_counter()
    model, last = run(base, train, config)
    secs = time.perf_counter() - t0
    after = validate(model, test)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    size_only = validate(sized, test)
    rows = [f"| {name} | {m['avS']:.3f} | {m['S@0.5']:.3f} | {m['AP']:.3f} |" for name, m in
            (("shipped model", before),
             (f"shipped model, input scale {sized.config.input_scale:.2f} from the labels (no training)", size_only),
             (f"fine-tuned ({last.step} steps, {secs:.0f} s, input scale {model.config.input_scale:.2f})", after))]
    gain = after["avS"] - size_only["avS"]
    headline = (f"Headline: avS {before['avS']:.3f} -> {after['avS']:.3f} after fine-tuning; the size matching alone gives "
                f"{size_only['avS']:.3f}, so the training steps "
                + (f"added {gain:.3f}." if gain > 0 else f"scored {-gain:.3f} lower than the size matching alone."))
    section = ("## Fine-tuning on a shifted domain\n\n" + headline + "\n\n"
               "Domain: fluorescence at 1.7x magnification (synthetic). Fine-tuned on 2 labelled images "
               f"(replay of synthetic base data {args.replay:.0%}), tested on {args.test} other images of the domain. "
               "Fine-tuning first measures the annotated worms' width against the synthetic training worms' "
               "and sets the model's input scale (the image is resized by its inverse before the network, as "
               "cellpose's diameter does); the middle row shows that step alone.\n\n"
               f"Learning rate {args.lr:g}, replay {args.replay:g} (the defaults; chosen on validation images of the "
               "domain with `--validation`, docs/training/history.md).\n\n"
               "| model | avS | S@0.5 | AP |\n|---|---|---|---|\n" + "\n".join(rows) +
               f"\n\nPeak resident memory {peak_mb:.0f} MB; {platform.machine()}, {torch.get_num_threads()} CPU threads, "
               f"torch {torch.__version__}.\nCommand: `python benchmarks/finetune.py --seconds {args.seconds:g} "
               f"--test {args.test}`\n")
    print(section)
    if args.validation:
        return
    from report import replace_section

    replace_section(Path(args.report), "## Fine-tuning", section)


if __name__ == "__main__":
    main()
