"""Train the shipped default model on synthetic worm scenes (both styles + binary input).

    python benchmarks/train_default.py [--target anchor] [--steps 3000] [--init M.pt] [--out src/napari_semiconv/models/default.pt]

Writes the model, its card (default.json), the loss/metric log (CSV) and curve (PNG) under
docs/, resumable from the .ckpt beside the output if interrupted (--resume).
"""

import argparse
import json
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import torch
from report import cpu_name
from tqdm import tqdm

from napari_semiconv import __version__
from napari_semiconv.data.sources import SyntheticSource, validation_scenes
from napari_semiconv.data.synthetic import SceneConfig
from napari_semiconv.model import build_model, load_model
from napari_semiconv.model.embedding import TARGETS, ModelConfig
from napari_semiconv.model.widen import pair_flows, widen
from napari_semiconv.train import TrainConfig, recentre_votes, train_to_file

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=3500)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--crop", type=int, default=320)
    ap.add_argument("--out", default=str(ROOT / "src/napari_semiconv/models/default.pt"))
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--init", help="start from this model's weights (continue training)")
    ap.add_argument("--target", choices=TARGETS, default="anchor", help="the model kind trained from scratch "
                    "(ignored with --init: the model's own)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    ap.add_argument("--warm", help="a new --target model whose layers of the same name and shape start from this "
                    "model's (e.g. an anchored model warm-started from an eq. 5 model's backbone)")
    ap.add_argument("--refine", type=int, default=0, help="residual dilated blocks on the backbone's output "
                    "(ModelConfig.refine; with --warm the other layers start from the donor)")
    ap.add_argument("--widen", type=int, default=0, help="with --init: train a copy of the model with this many "
                    "channels at the backbone's finest level, computing what it did at first (model.widen)")
    ap.add_argument("--pair", action="store_true", help="with --init: train a copy of the flow model with paired "
                    "flows (ModelConfig.flow_pair), its second flow starting as its first (model.widen.pair_flows)")
    ap.add_argument("--pieces", action="store_true", help="with --init: train the flow model toward one sink per "
                    "piece between overlaps (ModelConfig.flow_pieces; the decoder joins the pieces)")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seconds", type=float, default=0.0, help="time budget (0 = none)")
    ap.add_argument("--margin", type=float, default=1.0, help="weight of the repulsive margin")
    ap.add_argument("--kernel", type=float, default=1.0, help="weight of the kernel BCE")
    ap.add_argument("--centroid", type=float, default=TrainConfig().weights.centroid,
                    help="weight of the centroid anchor (Psi's spatial dims to the worm's centroid)")
    ap.add_argument("--near-crossing", type=float, default=TrainConfig().flow_weights.near_crossing,
                    help="flow models: extra weight of the flow error near crossings")
    ap.add_argument("--sink-clearance", type=float, default=None,
                    help="flow models: px by which each worm's sink is kept clear of crossings in the target (default: "
                         "the --init model's, else 0)")
    ap.add_argument("--crossing-class", type=float, default=TrainConfig().flow_weights.crossing_class,
                    help="flow models: weight of the 2+ worms class in the count loss")
    ap.add_argument("--bends", type=float, nargs=2, default=SceneConfig().bends, metavar=("LOW", "HIGH"),
                    help="how often the synthetic worms bend along their bodies, drawn per scene from this range "
                         "(SceneConfig.bends; 1 1: as the generator's defaults)")
    ap.add_argument("--length", type=float, nargs=2, default=SceneConfig().length, metavar=("LOW", "HIGH"),
                    help="synthetic worm lengths (px), drawn per worm from this range (SceneConfig.length)")
    ap.add_argument("--worms", type=int, nargs=2, default=SceneConfig().worms, metavar=("LOW", "HIGH"),
                    help="synthetic worms per whole field, drawn per scene from this range (SceneConfig.worms)")
    ap.add_argument("--touching", type=float, default=SceneConfig().touching,
                    help="probability that a synthetic worm is laid beside or across an earlier one: higher makes "
                         "more clumps (SceneConfig.touching)")
    args = ap.parse_args(argv)
    if (args.widen or args.pair or args.pieces) and not args.init:
        ap.error("--widen, --pair and --pieces change a trained model: give it with --init")
    if args.refine and args.init:
        ap.error("--refine builds a new model: give the trained one with --warm, not --init")
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = TrainConfig(steps=args.steps, batch=args.batch, crop=args.crop, val_every=500, lr=args.lr,
                         seconds=args.seconds, weights=replace(TrainConfig().weights, margin=args.margin,
                                                               kernel=args.kernel, centroid=args.centroid),
                         flow_weights=replace(TrainConfig().flow_weights, near_crossing=args.near_crossing,
                                                                         crossing_class=args.crossing_class))
    model = load_model(args.init) if args.init else build_model(ModelConfig.for_target(args.target, refine=args.refine))
    if args.widen:
        model = widen(model, args.widen)
    if args.pair:
        model = pair_flows(model)
    if args.pieces:
        model.config = replace(model.config, flow_pieces=True)
    if args.sink_clearance is not None:
        model.config = replace(model.config, sink_clearance=args.sink_clearance)
    if args.warm and not args.init:
        donor = load_model(args.warm)
        own = model.state_dict()
        shared = {k: v for k, v in donor.state_dict().items() if k in own and own[k].shape == v.shape}
        model.load_state_dict(shared, strict=False)
        model.metadata = {"recipe": donor.metadata.get("recipe") or [donor.metadata.get("command")],
                          **{k: donor.metadata[k] for k in ("decode", "decode_choice") if k in donor.metadata}}
        print(f"warm start: {len(shared)} of {len(own)} tensors from {args.warm}")
    if args.init and model.config.target == "eq5":
        shift = recentre_votes(model, [s.image for s in validation_scenes(2)])
        print(f"recentred the votes by ({shift[0]:.0f}, {shift[1]:.0f}) px")
    bar = tqdm(total=config.steps, desc="train default")
    out = Path(args.out)
    command = "python benchmarks/train_default.py " + " ".join(argv or sys.argv[1:])
    # every command from scratch to this model, in order: the card says how to reproduce it
    recipe = (model.metadata.get("recipe") or [model.metadata.get("command")]) if args.init or args.warm else []

    def show(p):
        bar.n = p.step
        bar.set_postfix(loss=f"{p.losses['total']:.3f}", sigma=f"{p.losses['sigma']:.3f}",
                        **({"avS": f"{p.val['avS']:.3f}"} if p.val else {}))
        bar.refresh()
        if p.val:
            tqdm.write(f"step {p.step}: " + ", ".join(f"{k}={v:.3f}" for k, v in p.val.items()))

    source = SyntheticSource(args.crop, SceneConfig(bends=tuple(args.bends), length=tuple(args.length),
                                                    worms=tuple(args.worms), touching=args.touching))
    meta = train_to_file(model, source, config, out, val_scenes=validation_scenes(4),
                         checkpoint_every=250, resume=args.resume, progress=show,
                         metadata={"data": "synthetic BBBC010-like scenes (napari_semiconv.data.synthetic), "
                                           "both styles, 10% binary-foreground inputs",
                                   "command": command, "recipe": [*recipe, command],
                                   "machine": f"{cpu_name()} {torch.get_num_threads()} threads, "
                                              f"torch {torch.__version__}, cpu",
                                   "version": __version__})
    bar.close()
    card = {k: v for k, v in meta.items() if k != "final_loss"}
    card["final_loss"] = meta["final_loss"]
    card["size_bytes"] = out.stat().st_size
    out.with_suffix(".json").write_text(json.dumps(card, indent=2))
    if out.resolve() == (ROOT / "src/napari_semiconv/models/default.pt").resolve():  # the shipped model's curve
        docs = ROOT / "docs" / "training"
        docs.mkdir(parents=True, exist_ok=True)
        for suffix in (".log.csv", ".log.png"):
            shutil.move(out.with_suffix(suffix), docs / f"default{suffix}")
    print(json.dumps(card["validation"], indent=1))


if __name__ == "__main__":
    main()
