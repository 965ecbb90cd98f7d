"""Command line: ``napari-semiconv segment | demo | train | finetune | evaluate | models | export-bioimageio |
import-bioimageio``.

Every user error prints one line ``napari-semiconv: error: ...`` and exits with status 2;
outputs are written atomically, one input at a time, after all inputs were checked.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from .errors import SemiconvError


def _segment_config(args, model):
    """The segment options; thresholds not given are the model's own (else the decoder's defaults)."""
    from .decode import THRESHOLDS, model_decode_config
    from .segment import SegmentConfig

    given = {k: getattr(args, k) for k in THRESHOLDS if hasattr(args, k)}
    return SegmentConfig(decode=model_decode_config(model, name=args.decoder, k=args.k, min_size=args.min_size,
                                                    overlap=not args.no_overlap, **given),
                         binary=args.binary, keep_embedding=False, worm_width=args.worm_width, tta=args.tta)


def cmd_segment(args) -> None:
    from .batch import segment_files
    from .data.readers import list_images
    from .registry import resolve_model

    list_images(args.inputs)  # a missing file or empty folder is said before the model loads
    model = resolve_model(args.model, args.device, baselines=True)
    segment_files(args.inputs, Path(args.out), model, _segment_config(args, model), args.quiet,
                  workers=args.workers, threads=args.threads_per_worker, redo=args.redo, scheduler=args.scheduler)


def cmd_demo(args) -> None:
    """Sample scenes -> segment -> evaluate against their ground truth."""
    import tifffile

    from .batch import evaluate_dirs, segment_files
    from .data.sources import SAMPLE_SEED0
    from .data.synthetic import SceneConfig, make_scene
    from .registry import resolve_model

    out = Path(args.out)
    inputs, truth = out / "inputs", out / "ground_truth"
    inputs.mkdir(parents=True, exist_ok=True)
    truth.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, style in enumerate(("brightfield", "fluorescence") * args.scenes):
        scene = make_scene(SAMPLE_SEED0 + 100 + i, SceneConfig(style=style))
        paths.append(inputs / f"{style}_{i:02d}.tif")
        tifffile.imwrite(paths[-1], scene.image)
        tifffile.imwrite(truth / f"{style}_{i:02d}.tif", scene.instances.astype(np.uint8), compression="zlib")
    model = resolve_model(args.model, args.device, baselines=True)
    segment_files(paths, out / "segmented", model, _segment_config(args, model), args.quiet)
    metrics = evaluate_dirs(out / "segmented", truth)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    print(json.dumps(metrics, indent=2))
    print(f"outputs in {out}/segmented; look at one with: napari-semiconv view {paths[0]} "
          f"{out}/segmented/{paths[0].stem}_labels.tif")


def cmd_view(args) -> None:
    """Open an image and its worms (as a Labels layer, which napari's own reader cannot tell) in napari."""
    from .data.readers import read_image

    image = read_image(args.image)
    labels = [read_image(p) for p in args.labels]
    try:
        import napari
    except ImportError:
        raise SemiconvError("napari is not installed: pip install 'napari-semiconv[all]'") from None
    viewer = napari.Viewer()
    viewer.add_image(image, name=Path(args.image).stem)
    for path, data in zip(args.labels, labels):
        viewer.add_labels(np.asarray(data).astype(np.int64, copy=False), name=Path(path).stem)
    napari.run()


def _training_source(spec: str, crop: int):
    """--data synthetic | folder:DIR | bbbc010:DIR -> (source, description)."""
    from .data.readers import read_bbbc010, read_folder
    from .data.sources import ListSource, SyntheticSource

    kind, _, path = spec.partition(":")
    if kind == "synthetic":
        return SyntheticSource(crop), "synthetic"
    if kind in ("folder", "bbbc010") and path:
        items = read_folder(path) if kind == "folder" else read_bbbc010(path, "train")
        return ListSource([a.image for a in items], [a.instances for a in items]), spec
    raise SemiconvError(f"unknown --data {spec!r}: use synthetic, folder:DIR or bbbc010:DIR")


def cmd_train(args) -> None:
    from tqdm import tqdm

    from .atomic import check_writable
    from .data.sources import validation_scenes
    from .model import ModelConfig, build_model, pick_device
    from .train import TrainConfig, train_to_file

    out = Path(args.out)
    if out.suffix != ".pt":
        raise SemiconvError(f"--out {out} should end in .pt")
    check_writable(out)
    source, desc = _training_source(args.data, args.crop)
    model = build_model(ModelConfig.for_target(args.target, semiconv=not args.conv)).to(pick_device(args.device))
    config = TrainConfig(steps=args.steps, seconds=args.seconds, batch=args.batch, crop=args.crop,
                         lr=args.lr, seed=args.seed, val_every=args.val_every)
    bar = tqdm(total=config.steps, desc="train", disable=args.quiet)

    def show(p):
        bar.update(p.step - bar.n)
        bar.set_postfix(loss=f"{p.losses['total']:.3f}")

    meta = train_to_file(model, source, config, out, val_scenes=validation_scenes(args.val_scenes),
                         resume=args.resume, progress=show, metadata={"data": desc})
    bar.close()
    print(json.dumps({"model": str(out), "steps": meta["steps"], "validation": meta["validation"]}))


def cmd_finetune(args) -> None:
    from tqdm import tqdm

    from .atomic import check_writable
    from .data.readers import read_image
    from .finetune import FinetuneConfig, finetune_summary, finetune_to_file
    from .registry import resolve_model

    if len(args.images) != len(args.labels):
        raise SemiconvError(f"{len(args.images)} --images but {len(args.labels)} --labels: give one labels file per image")
    config = FinetuneConfig(steps=args.steps, seconds=args.seconds, lr=args.lr, seed=args.seed,
                            hold_back=args.hold_back, train=args.train)
    check_writable(args.out)
    images = [read_image(p) for p in args.images]
    labels = [read_image(p) for p in args.labels]
    model = resolve_model(args.model, args.device)
    bar = tqdm(total=config.steps, desc="fine-tune", unit="step", disable=args.quiet)

    def show(p):
        bar.n = p.step
        bar.set_postfix(loss=f"{p.losses['total']:.3f}", seconds=f"{p.elapsed:.0f}")

    meta = finetune_to_file(model, images, labels, config, args.out,
                            image_names=[str(p) for p in args.images], progress=show)
    bar.close()
    print(finetune_summary(meta), file=sys.stderr)
    print(json.dumps({"model": str(args.out), "steps": meta["steps"], "final_loss": meta["final_loss"]["total"],
                      "input_scale": meta["input_scale"], "decode": meta.get("decode"),
                      "user_images": meta.get("user_images"), "training_kept": meta.get("training_kept")}))


def cmd_evaluate(args) -> None:
    from .batch import evaluate_dirs
    metrics = evaluate_dirs(Path(args.pred), Path(args.gt))
    if metrics["missing"]:
        print(f"napari-semiconv: note: no prediction for {len(metrics['missing'])} ground-truth file(s), scored "
              f"as all misses: {', '.join(metrics['missing'])}", file=sys.stderr)
    text = json.dumps(metrics, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text)


def cmd_models(args) -> None:
    from .registry import Registry

    registry = Registry()
    entries = registry.list()
    if not entries:
        print(f"no fine-tuned models yet in {registry.root} (the shipped model is always available: omit --model)")
    for entry in entries:
        print(f"{entry.name}\t{entry.path}\t{entry.metadata.get('date', '')}")


def cmd_export_bioimageio(args) -> None:
    from .exchange import export_bioimageio

    path = export_bioimageio(args.model, args.out, name=args.name, authors=args.author or None, license=args.license)
    print(json.dumps({"package": str(path), "model": args.model or "shipped default"}))


def cmd_import_bioimageio(args) -> None:
    from .exchange import import_bioimageio

    path = import_bioimageio(args.package, name=args.name, out=args.out)
    print(json.dumps({"model": str(path), "name": Path(path).stem}))


def _segment_options(p) -> None:
    from .decode import DECODERS

    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    p.add_argument("--decoder", default="seeded", choices=DECODERS, help="how pixels are grouped into worms")
    p.add_argument("--k", type=int, default=0, help="number of worms (kmeans decoder)")
    p.add_argument("--min-size", type=int, default=60, help="smallest worm kept, pixels")
    p.add_argument("--kernel-threshold", type=float, default=argparse.SUPPRESS, help="K(seed, u) above which u joins the seed's worm "
                   "(default: the model's own, chosen on its validation images or your labels)")
    p.add_argument("--merge-threshold", type=float, default=argparse.SUPPRESS, help="touching pieces whose centres have K above this merge, "
                   "0 = off (default: the model's own)")
    p.add_argument("--fg-threshold", type=float, default=argparse.SUPPRESS, help="foreground probability above which a pixel is a worm's "
                   "(default: the model's own)")
    p.add_argument("--min-score", type=float, default=argparse.SUPPRESS, help="worms scored below this (0-1) are "
                   "dropped (default: the model's own)")
    p.add_argument("--no-overlap", action="store_true", help="one worm per pixel in the instance stack")
    p.add_argument("--binary", action="store_true", help="inputs are binary foreground masks (BBBC010 protocol)")
    p.add_argument("--worm-width", type=float, default=0.0, metavar="PX",
                   help="typical worm width in pixels (the measurements' mean_width) when your magnification differs "
                        "from the model's; the image is resized to match the model's worms (0 = as the model is)")
    p.add_argument("--tta", action="store_true", help="test-time augmentation: average the network over the 8 "
                   "flips and quarter turns of each image (8x the network time)")
    p.add_argument("--quiet", action="store_true", help="no progress bar or per-image lines")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    from .finetune import TRAIN_PARTS, FinetuneConfig

    ap = argparse.ArgumentParser(prog="napari-semiconv", description="Semi-convolutional worm segmentation")
    ap.add_argument("--version", action="version", version=f"napari-semiconv {__version__}")
    sub = ap.add_subparsers(dest="command", required=True)
    defaults = {"formatter_class": argparse.ArgumentDefaultsHelpFormatter}

    s = sub.add_parser("segment", **defaults, help="segment images, write labels, instance stacks and CSV")
    s.add_argument("inputs", nargs="+", help="image files or folders")
    s.add_argument("--out", required=True, help="output folder")
    s.add_argument("--model", help="model file or registry name (default: the shipped model); or a Mask R-CNN "
                   "baseline file (benchmarks/paper_table.py, needs the extra 'baselines'), which of the decoder "
                   "options below uses only --min-size and --no-overlap")
    s.add_argument("--workers", type=int, default=0, help="worker processes of a Dask LocalCluster that share the "
                   "images (0 = segment here, one image after another)")
    s.add_argument("--threads-per-worker", type=int, default=1, help="torch threads of each worker")
    s.add_argument("--scheduler", metavar="ADDRESS", help="run on the existing dask.distributed cluster whose "
                   "scheduler is at ADDRESS (e.g. tcp://host:8786; its workers need napari-semiconv) instead of "
                   "starting a LocalCluster")
    s.add_argument("--redo", action="store_true", help="segment again the images whose results are already in "
                   "--out (by default a re-run, e.g. after an interruption, skips them)")
    _segment_options(s)
    s.set_defaults(func=cmd_segment)

    dm = sub.add_parser("demo", **defaults, help="segment built-in sample scenes and score them against their ground truth")
    dm.add_argument("--out", default="demo_out", help="output folder")
    dm.add_argument("--scenes", type=int, default=2, help="scenes per style")
    dm.add_argument("--model", help="model file or registry name (default: the shipped model), or a Mask R-CNN "
                    "baseline file (as for segment)")
    _segment_options(dm)
    dm.set_defaults(func=cmd_demo)

    t = sub.add_parser("train", **defaults, help="train a model from scratch")
    t.add_argument("--data", default="synthetic", help="synthetic | folder:DIR | bbbc010:DIR")
    t.add_argument("--out", required=True, help="model file to write (.pt)")
    t.add_argument("--steps", type=int, default=2000, help="optimizer steps")
    t.add_argument("--seconds", type=float, default=0.0, help="time budget (0 = none)")
    t.add_argument("--batch", type=int, default=4, help="crops per step")
    t.add_argument("--crop", type=int, default=256, help="training crop size, pixels")
    t.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (AdamW, cosine decay)")
    t.add_argument("--seed", type=int, default=0, help="random seed")
    t.add_argument("--val-every", type=int, default=500, help="steps between validations")
    t.add_argument("--val-scenes", type=int, default=4, help="synthetic validation scenes")
    t.add_argument("--conv", action="store_true", help="plain convolutional embedding (ablation)")
    t.add_argument("--target", choices=("anchor", "eq5", "flow"), default="anchor",
                   help="anchor: votes for a fixed point on each worm, a bandwidth per pixel, an IoU loss per worm "
                        "(learns faster from scratch, docs/benchmarks.md); eq5: the paper's loss; flow: a unit "
                        "flow along the body to the anchor, followed at decode time")
    t.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    t.add_argument("--resume", action="store_true", help="continue from OUT.ckpt")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=cmd_train)

    f = sub.add_parser("finetune", **defaults, help="fine-tune a model on corrected labels")
    f.add_argument("--model", help="base model file or registry name (default: shipped)")
    f.add_argument("--images", nargs="+", required=True, help="(H, W) images to learn from")
    f.add_argument("--labels", nargs="+", required=True, help="(H, W) label images, one per image")
    f.add_argument("--steps", type=int, default=200, help="optimizer steps")
    f.add_argument("--seconds", type=float, default=0.0, help="time budget (0 = none)")
    f.add_argument("--lr", type=float, default=FinetuneConfig.lr, help="peak learning rate")
    f.add_argument("--seed", type=int, default=0, help="random seed")
    f.add_argument("--hold-back", type=float, default=FinetuneConfig.hold_back,
                   help="share of each labelled image kept from training to choose the thresholds and judge the "
                        "training; from 3 images on, the last image is kept whole instead (0 = train on everything)")
    f.add_argument("--train", choices=TRAIN_PARTS, default=FinetuneConfig.train,
                   help="what trains: all (the whole network) or heads (the heads alone, on the backbone's features "
                        "computed once: more steps in the same time)")
    f.add_argument("--out", required=True, help="new model file (.pt); never the base model")
    f.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    f.add_argument("--quiet", action="store_true", help="no progress bar")
    f.set_defaults(func=cmd_finetune)

    e = sub.add_parser("evaluate", **defaults, help="S(t), avS and AP of predictions against ground truth")
    e.add_argument("--pred", required=True, help="folder with <stem>_instances.tif (+ .csv scores)")
    e.add_argument("--gt", required=True, help="folder with <stem>.tif label images or instance stacks")
    e.add_argument("--json", help="also write the metrics here")
    e.set_defaults(func=cmd_evaluate)

    v = sub.add_parser("view", **defaults, help="open an image and its labels (as Labels layers) in napari")
    v.add_argument("image", help="the image")
    v.add_argument("labels", nargs="*", help="label images (e.g. <stem>_labels.tif) to show as Labels layers")
    v.set_defaults(func=cmd_view)

    m = sub.add_parser("models", **defaults, help="list the models in the user registry")
    m.set_defaults(func=cmd_models)

    x = sub.add_parser("export-bioimageio", **defaults, help="write a model as a bioimage.io model package (.zip)")
    x.add_argument("model", nargs="?", help="model file or registry name (default: the shipped model)")
    x.add_argument("out", help="package to write (.zip)")
    x.add_argument("--name", help="the package's name (default: napari-semiconv MODEL (TARGET))")
    x.add_argument("--author", action="append", help="an author's name (repeat for several; default: napari-semiconv)")
    x.add_argument("--license", default="BSD-3-Clause", help="SPDX license identifier of the weights")
    x.set_defaults(func=cmd_export_bioimageio)

    i = sub.add_parser("import-bioimageio", **defaults, help="add a bioimage.io package exported by napari-semiconv "
                       "to the model registry (or write it as a model file)")
    i.add_argument("package", help="the package: .zip, its folder or its rdf.yaml")
    where = i.add_mutually_exclusive_group()
    where.add_argument("--name", help="registry name (default: the name it was exported with; made unique)")
    where.add_argument("--out", help="write the model file here (.pt) instead of adding it to the registry")
    i.set_defaults(func=cmd_import_bioimageio)
    return ap


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except SemiconvError as exc:
        print(f"napari-semiconv: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("napari-semiconv: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
