"""What each part of fine-tuning buys on shifted domains.

    python benchmarks/finetune.py [--seconds 60] [--test 6]

Two synthetic domains the shipped model never saw: fluorescence at 1.7x magnification and
brightfield at 2x (worms twice as wide and long). For each, two images with their (perfect)
corrected labels fine-tune the shipped model for at most --seconds on this machine's CPU, and
avS is measured on --test other images of the domain (fresh seeds) for:

- the shipped model as it is;
- size matching only (the input scale measured from the labels, no training step);
- thresholds only (the decoder's thresholds chosen on the two labelled images, no training);
- training only (the training steps at the shipped model's input scale and thresholds);
- all together (what ``napari-semiconv finetune`` and the Fine-tune dock do).

Writes the "Fine-tuning" section of docs/benchmarks.md (``--validation``: validation seeds, to
choose the learning rate and replay share, printed only).
"""

import argparse
import copy
import resource
import time
from dataclasses import replace
from pathlib import Path

import torch

from napari_semiconv.data.sources import TEST_SEED0, VAL_SEED0
from napari_semiconv.data.synthetic import SceneConfig, make_scene
from napari_semiconv.finetune import (
    CLEAR_GAIN,
    HOLD_BACK_IMAGE,
    TRAIN_PARTS,
    WEIGHTS_GAIN,
    FinetuneConfig,
    check_annotations,
    choose_thresholds,
    finetune,
)
from napari_semiconv.registry import resolve_model
from napari_semiconv.train import validate
from napari_semiconv.worm_size import size_scale, trained_worm_width

ROOT = Path(__file__).resolve().parents[1]
DOMAINS = {"fluorescence at 1.7x": SceneConfig(style="fluorescence", scale=(1.7, 1.7), worms=(6, 12)),
           "brightfield at 2x": SceneConfig(style="brightfield", scale=(2.0, 2.0), worms=(5, 10))}


def thresholds_only(base, images, stacks, valid):
    """``base`` (same parameters) with the decoder thresholds chosen on the annotated images."""
    chosen = choose_thresholds(base, base, images, stacks, valid)["decode"]
    view = copy.copy(base)
    view.metadata = {**getattr(base, "metadata", {}), "decode": chosen}
    return view


PART_NAMES = {"all": "the whole network", "heads": "the heads alone on cached features"}


def _kept(model) -> str:
    """', weights not kept' where the held-back verdict kept the base model's weights."""
    return ", weights not kept" if getattr(model, "metadata", {}).get("training_kept") is False else ""


def timed_finetune(base, train, config: FinetuneConfig):
    """Fine-tune ``base`` on the ``train`` scenes -> (model, steps, seconds)."""
    t0 = time.perf_counter()
    model, last = finetune(base, [s.image for s in train], [s.labels for s in train], config=config)
    return model, (last.step if last else 0), time.perf_counter() - t0


def domain_rows(base, name: str, scene: SceneConfig, seed0: int, n_test: int, config: FinetuneConfig,
                n_images: int = 2):
    """Table rows (dicts) for one domain, fine-tuned on ``n_images`` labelled images; the scenes use seeds
    ``seed0 + 5000 + i`` / ``+ 6000 + i``."""
    train = [make_scene(seed0 + 5000 + i, scene) for i in range(n_images)]
    test = [make_scene(seed0 + 6000 + i, scene) for i in range(n_test)]
    # what fine-tuning sees: the label images (a worm partly covered by another is cut), not the instance stacks
    images, stacks, valid = check_annotations([s.image for s in train], [s.labels for s in train])
    scale = size_scale(stacks, trained_worm_width(base), base.config.input_scale)
    t0 = time.perf_counter()
    tuned = thresholds_only(base, images, stacks, valid)
    t_thr = time.perf_counter() - t0
    trained, steps_t, secs_t = timed_finetune(base, train, replace(config, match_size=False,
                                                                      tune_thresholds=False))
    full, steps_a, secs_a = timed_finetune(base, train, config)
    other = next(p for p in TRAIN_PARTS if p != config.train)
    alt, steps_o, secs_o = timed_finetune(base, train, replace(config, train=other))
    parts = [("shipped model", base, "-"),
             (f"size matching only (input scale {scale:.2f})", base.with_input_scale(scale), "-"),
             ("thresholds only", tuned, f"{t_thr:.0f} s"),
             (f"training only ({steps_t} steps{_kept(trained)})", trained, f"{secs_t:.0f} s"),
             (f"all together ({steps_a} steps{_kept(full)}, input scale {full.config.input_scale:.2f})", full,
              f"{secs_a:.0f} s"),
             (f"all together, training {PART_NAMES[other]} ({steps_o} steps{_kept(alt)})", alt, f"{secs_o:.0f} s")]
    return [{"domain": name, "part": part, "time": t, **validate(model, test)} for part, model, t in parts]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--test", type=int, default=6)
    ap.add_argument("--images", type=int, default=2, help="labelled images per domain (from "
                    f"{HOLD_BACK_IMAGE} on, the last is held back whole)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--lr", type=float, default=FinetuneConfig.lr)
    ap.add_argument("--replay", type=float, default=FinetuneConfig.replay)
    ap.add_argument("--train", choices=TRAIN_PARTS, default=FinetuneConfig.train,
                    help="what the 'training only' and 'all together' rows train (the last row: the other)")
    ap.add_argument("--validation", action="store_true",
                    help="use validation seeds (to choose --lr/--replay) and print only, no report")
    ap.add_argument("--report", default=str(ROOT / "docs" / "benchmarks.md"))
    args = ap.parse_args(argv)
    base = resolve_model(None, args.device)
    seed0 = VAL_SEED0 if args.validation else TEST_SEED0
    config = FinetuneConfig(steps=10_000, seconds=args.seconds, lr=args.lr, replay=args.replay, train=args.train)
    rows = []
    for k, (name, scene) in enumerate(DOMAINS.items()):
        rows += domain_rows(base, name, scene, seed0 + 100 * k, args.test, config, args.images)
        print("\n".join(f"{r['domain']} | {r['part']} | {r['avS']:.3f}" for r in rows[-6:]), flush=True)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    from report import cpu_name, replace_section

    table = "\n".join(f"| {r['domain']} | {r['part']} | {r['time']} | {r['avS']:.3f} | {r['S@0.5']:.3f} | "
                      f"{r['AP']:.3f} |" for r in rows)
    heads = []
    for name in DOMAINS:
        got = {r["part"].split(" (")[0]: r["avS"] for r in rows if r["domain"] == name}
        steps_gain = got["all together"] - max(got["size matching only"], got["thresholds only"])
        heads.append(f"{name}: avS {got['shipped model']:.3f} -> {got['all together']:.3f} "
                     f"(gain {got['all together'] - got['shipped model']:+.3f}); the training steps add "
                     f"{steps_gain:+.3f} beyond the better of size matching and thresholds alone")
    section = ("## Fine-tuning on shifted domains\n\n" + "\n".join(f"- {h}" for h in heads) + "\n\n"
               f"Fine-tuned on {args.images} labelled images per domain for at most {args.seconds:g} s (learning rate {args.lr:g}, "
               f"replay of synthetic base data {args.replay:.0%}, training {PART_NAMES[args.train]}), tested on {args.test} other images of the domain "
               "(synthetic, fresh seeds; magnified as through a microscope: the worms' shape, texture and halo and the optics' "
               "blur scale with them, the camera's noise does not; before session 28 magnified worms bent twice as "
               "often along their bodies). Size matching measures the annotated worms' width against the synthetic "
               "training worms' and resizes the image by the inverse before the network, as cellpose's diameter "
               "does; 'thresholds only' chooses them on the labelled images (kept only if "
               f"{CLEAR_GAIN:g} avS better there than the model's own); the rows that train hold back "
               + ("the last image whole" if args.images >= HOLD_BACK_IMAGE else f"the last {FinetuneConfig.hold_back:.0%} "
                  "of each image (and do not train on the worms that reach into it)") + ", choose "
               "the thresholds there and keep the trained weights only if they score better there than size matching "
               f"alone by the larger of {WEIGHTS_GAIN:g} avS and two held-back worms' worth (2 / n for the n annotated "
               "worms that reach into the held-back part); 'time' is the wall time of that part.\n\n"
               "| domain | part | time | avS | S@0.5 | AP |\n|---|---|---|---|---|---|\n" + table +
               f"\n\nPeak resident memory {peak_mb:.0f} MB; {cpu_name()}, {torch.get_num_threads()} CPU threads, "
               f"torch {torch.__version__}.\nCommand: `python benchmarks/finetune.py --seconds {args.seconds:g} "
               f"--test {args.test} --train {args.train}" + (f" --images {args.images}" if args.images != 2 else "") + "`\n")
    print(section)
    if args.validation:
        return
    replace_section(Path(args.report), "## Fine-tuning", section)


if __name__ == "__main__":
    main()
