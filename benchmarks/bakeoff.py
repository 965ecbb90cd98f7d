"""Equal-budget bake-off of training targets, each trained from scratch on the synthetic generator.

    python benchmarks/bakeoff.py train --target anchor --minutes 40 --threads 1 --out runs/anchor.pt [--resume]
    python benchmarks/bakeoff.py score runs/eq5.pt runs/anchor.pt [--scenes 40] [--card]

``train`` trains one candidate (``eq5``: today's recipe, the paper's eq. 5 + kernel BCE + margin x3 +
kernel x2 + centroid anchor; ``anchor``: fixed anchors on the worms, bounded offsets, a bandwidth
per pixel, Lovasz loss on each worm's soft mask, a full-resolution 0/1/2+ count head). Both use
crops centred on worms. A checkpoint is written every 250 steps (``--resume`` continues it) and a
learning curve (validation avS against minutes, on 3 + 3 validation scenes, seeds VAL_SEED0 + 500 + i)
beside the model.

``score`` runs each model once per scene on ``--scenes`` validation scenes per style (seeds
VAL_SEED0 + 1000 + i: never training or test seeds) and decodes at three kernel thresholds (the other
thresholds at their defaults) and with the model's own stored thresholds (``own``: those
``tune_decoder.py --write`` chose, a score cut among them); it writes the "Bake-off" section of docs/benchmarks.md with the learning curves.
``--card`` also writes each model's scores with its own thresholds into the ``validation`` block of the card beside
it (the shipped model's card quotes them, never typed in).
"""

import argparse
import csv
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
from report import REPORT, cpu_name, portable, replace_section

from napari_semiconv.data.sources import VAL_SEED0, SyntheticSource, validation_scenes
from napari_semiconv.decode import DecodeConfig, model_decode_config
from napari_semiconv.metrics import evaluate
from napari_semiconv.model import build_model, load_model
from napari_semiconv.model.embedding import TARGETS, ModelConfig
from napari_semiconv.normalize import normalize
from napari_semiconv.segment import SegmentConfig, decode_outputs, predict_iter
from napari_semiconv.train import TrainConfig, train_to_file

THRESHOLDS = (0.3, 0.4, 0.5, "own")  # kernel thresholds with the other defaults; "own": the model's stored ones
HEADING = "Bake-off: training targets at an equal budget"
STYLES = ("brightfield", "fluorescence")


def curve_scenes():
    return [s for style in STYLES for s in validation_scenes(3, style, VAL_SEED0 + 500)]


def train(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = TrainConfig(steps=10**6, seconds=args.minutes * 60, batch=args.batch, crop=args.crop, lr=args.lr,
                         val_every=args.val_every,
                         weights=replace(TrainConfig().weights, margin=3.0, kernel=2.0, centroid=1.0))
    model = build_model(ModelConfig.for_target(args.target))
    t0 = time.time()
    meta = train_to_file(model, SyntheticSource(args.crop), config, args.out, val_scenes=curve_scenes(),
                         checkpoint_every=250, resume=args.resume,
                         progress=lambda p: p.val and print(f"{p.step} steps {p.elapsed / 60:.1f} min avS "
                                                            f"{p.val['avS']:.3f}", flush=True),
                         metadata={"command": "python benchmarks/bakeoff.py " + " ".join(sys.argv[1:]),
                                   "machine": f"{cpu_name()} {args.threads} threads, torch {torch.__version__}"})
    print(json.dumps({"steps": meta["steps"], "minutes": (time.time() - t0) / 60}))


@torch.no_grad()
def score_model(path, scenes) -> dict:
    """{threshold: metrics} over ``scenes``, plus the seconds per scene of forward + decode."""
    model = load_model(path)
    configs = {t: model_decode_config(model) if t == "own" else DecodeConfig(kernel_threshold=t) for t in THRESHOLDS}
    preds = {t: ([], []) for t in THRESHOLDS}
    t0 = time.perf_counter()
    for scene in scenes:
        out = list(predict_iter(model, normalize(scene.image), SegmentConfig()))[-1]
        for t in THRESHOLDS:
            dec = decode_outputs(out, configs[t])
            preds[t][0].append(dec.instances)
            preds[t][1].append(dec.scores)
    seconds = (time.perf_counter() - t0) / len(scenes)
    gts = [s.instances for s in scenes]
    return {t: evaluate(p, s, gts) for t, (p, s) in preds.items()}, seconds


def curve(path: Path) -> list:
    log = path.with_suffix(".log.csv")
    if not log.exists():
        return []
    with open(log) as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("val_avS")]
    return [(float(r["seconds"]) / 60, float(r["val_avS"]), int(float(r["val_images"]))) for r in rows]


def write_validation(path: Path, own: dict, args) -> None:
    """Write ``own`` ({style: metrics with the model's stored thresholds}) as the ``validation`` block of the card
    beside the model file at ``path`` (its other entries kept), with the scenes and the command that measured them."""
    card = path.with_suffix(".json")
    if not card.exists():
        raise SystemExit(f"--card: there is no card beside {path} ({card.name}) to write the validation into")
    data = json.loads(card.read_text())
    data["validation"] = {**(data.get("validation") or {}), "scenes": (
        f"{args.scenes} per style, seeds VAL_SEED0 + 1000 + i (python benchmarks/bakeoff.py score "
        f"{' '.join(args.models)} --scenes {args.scenes} --card)"),
        **{style: {k: round(float(m[k]), 3) for k in ("avS", "S@0.5", "AP")} for style, m in own.items()}}
    card.write_text(json.dumps(data, indent=2) + "\n")


def score(args):
    torch.set_num_threads(args.threads)
    scenes = {style: validation_scenes(args.scenes, style, VAL_SEED0 + 1000) for style in STYLES}
    lines = [f"## {args.heading}", "",
             (f"Command: `python benchmarks/bakeoff.py score {' '.join(args.models)} --scenes {args.scenes}"
             + (f" --heading '{args.heading}'" if args.heading != HEADING else "") + "` "
             f"({cpu_name()}, {torch.get_num_threads()} threads, torch {torch.__version__}); each model's "
             "training command is below. Scored on "
             f"{args.scenes} validation scenes per style (seeds VAL_SEED0 + 1000 + i, not training or test "
             "seeds), the network run once per scene and decoded at each kernel threshold (other thresholds at their "
             "defaults) and with the model's own stored thresholds ('own')."), "",
             "| model | training | threshold | brightfield avS | S@0.5 | AP | fluorescence avS | S@0.5 | AP | s/scene |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    curves = []
    for path in map(Path, args.models):
        meta = load_model(path).metadata
        res = {style: score_model(path, sc) for style, sc in scenes.items()}
        for t in THRESHOLDS:
            b, f = res["brightfield"][0][t], res["fluorescence"][0][t]
            secs = (res["brightfield"][1] + res["fluorescence"][1]) / 2
            lines.append(f"| {path.stem} | {meta.get('steps')} steps"
                         + (f", {meta['seconds'] / 60:.0f} min" if meta.get("seconds") else "")
                         + (" (last run)" if meta.get("init") else "") + f" | {t} | "
                         f"{b['avS']:.3f} | {b['S@0.5']:.3f} | {b['AP']:.3f} | {f['avS']:.3f} | {f['S@0.5']:.3f} | "
                         f"{f['AP']:.3f} | {secs:.2f} |")
        if args.card:
            write_validation(path, {style: res[style][0]["own"] for style in STYLES}, args)
        command = meta.get("command") or " ; then ".join(meta.get("recipe") or ["unknown"])
        points = curve(path)
        curves.append(f"- {path.stem}: `{portable(str(command))}` ({meta.get('machine')}); "
                      + (f"validation avS ({points[0][2]} scenes) against minutes: "
                         + ", ".join(f"{m:.0f} min {a:.3f}" for m, a, _ in points) if points
                         else f"no learning curve beside the file ({path.with_suffix('.log.csv').name})"))
        print("\n".join(lines[-len(THRESHOLDS):]), flush=True)
    lines += ["", "s/scene: forward + the four decodings, per 696 x 520 scene. Learning curves:", ""] + curves
    replace_section(Path(args.report), f"## {args.heading}", "\n".join(lines))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("--target", choices=TARGETS, required=True)
    t.add_argument("--minutes", type=float, default=40)
    t.add_argument("--threads", type=int, default=2)
    t.add_argument("--batch", type=int, default=2)
    t.add_argument("--crop", type=int, default=448)
    t.add_argument("--lr", type=float, default=2e-3)
    t.add_argument("--val-every", type=int, default=300)
    t.add_argument("--out", required=True)
    t.add_argument("--resume", action="store_true")
    s = sub.add_parser("score")
    s.add_argument("models", nargs="+")
    s.add_argument("--scenes", type=int, default=40)
    s.add_argument("--threads", type=int, default=2)
    s.add_argument("--report", default=str(REPORT))
    s.add_argument("--card", action="store_true",
                   help="write each model's scores with its own thresholds into the card (.json) beside it")
    s.add_argument("--heading", default=HEADING,
                   help="the report section to (re)write")
    args = ap.parse_args()
    if args.cmd == "train":
        train(args)
    else:
        score(args)


if __name__ == "__main__":
    main()
