"""Accuracy and speed of a model on held-out synthetic scenes (and BBBC010's test split).

    python benchmarks/accuracy.py [--model M.pt] [--scenes 10] [--bbbc010 DIR] [--device cpu]

Scenes use seeds TEST_SEED0 + i (never drawn in training: training seeds are < 1e9). Time per
image is end to end: read the TIFF, normalize, forward, decode, write the three output files.
Peak memory is the process's maximum resident set size. Writes a section of docs/benchmarks.md.
"""

import json
import resource
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import tifffile
import torch

from napari_semiconv.batch import segment_files
from napari_semiconv.data.sources import TEST_SEED0
from napari_semiconv.data.synthetic import SceneConfig, make_scene
from napari_semiconv.decode import model_decode_config
from napari_semiconv.metrics import as_stack, evaluate
from napari_semiconv.registry import resolve_model
from napari_semiconv.segment import SegmentConfig
from napari_semiconv.worm_size import trained_worm_width

ROOT = Path(__file__).resolve().parents[1]


HEADING = "Accuracy and speed (held-out synthetic scenes, 696 x 520)"
MAGNIFIED_WORMS = (3, 8)  # worms per 2x-magnified field: a quarter of the field, so of the (10, 30) worms, of a 1x one


def _instances(path: Path, shape: tuple) -> np.ndarray:
    """The ``(N, H, W)`` instance stack the CLI wrote, or ``(0, H, W)`` where it found no worm (and wrote none)."""
    return as_stack(tifffile.imread(path)) if path.is_file() else np.zeros((0, *shape), np.uint8)


def run_set(model, images, truths, config, device) -> dict:
    """Segment ``images`` through files (end to end) and score them; returns metrics + timing."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        paths = []
        for i, im in enumerate(images):
            paths.append(tmp / f"im{i:03d}.tif")
            tifffile.imwrite(paths[-1], im)
        segment_files(paths[:1], tmp / "warm", model, config, quiet=True)  # warm-up
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        segment_files(paths, tmp / "out", model, config, quiet=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        secs = (time.perf_counter() - t0) / len(paths)
        preds = [_instances(tmp / "out" / f"{p.stem}_instances.tif", im.shape) for p, im in zip(paths, images)]
        scores = [np.loadtxt(tmp / "out" / f"{p.stem}_instances.csv", delimiter=",", skiprows=1, usecols=1, ndmin=1)
                  for p in paths]
    m = evaluate(preds, scores, truths)
    m["s_per_image"] = secs
    return m


def main(argv=None):
    from report import cpu_name, model_name, model_parser, portable

    ap = model_parser(__doc__)
    ap.add_argument("--scenes", type=int, default=10, help="scenes per style")
    ap.add_argument("--bbbc010")
    ap.add_argument("--kernel-threshold", type=float, help="seeded decoder thresholds (default: the model's own)")
    ap.add_argument("--merge-threshold", type=float)
    ap.add_argument("--heading", default=HEADING, help="the report section to (re)write")
    args = ap.parse_args(argv)
    model = resolve_model(args.model, args.device)
    device = next(model.parameters()).device
    given = {"kernel_threshold": args.kernel_threshold, "merge_threshold": args.merge_threshold}
    decoder = model_decode_config(model, **given)
    rows = {}
    for style in ("brightfield", "fluorescence"):
        scenes = [make_scene(TEST_SEED0 + 1000 * (style == "fluorescence") + i, SceneConfig(style=style))
                  for i in range(args.scenes)]
        for overlap in (True, False):
            cfg = SegmentConfig(decode=replace(decoder, overlap=overlap), keep_embedding=False)
            rows[f"{style}, {'instance stack (overlaps)' if overlap else 'label image'}"] = run_set(
                model, [s.image for s in scenes], [s.instances for s in scenes], cfg, device)
        rows[f"{style}, instance stack, 8-fold TTA"] = run_set(
            model, [s.image for s in scenes], [s.instances for s in scenes],
            SegmentConfig(decode=decoder, keep_embedding=False, tta=True), device)
        rows[f"{style}, binary foreground input"] = run_set(
            model, [s.instances.any(0).astype(np.uint8) for s in scenes], [s.instances for s in scenes],
            SegmentConfig(decode=decoder, binary=True, keep_embedding=False), device)
    magnified = [make_scene(TEST_SEED0 + 2000 + i, SceneConfig(style="brightfield", scale=(2.0, 2.0), worms=MAGNIFIED_WORMS))
                 for i in range(args.scenes)]
    width = 2.0 * trained_worm_width(model)
    for name, cfg in (("as is", SegmentConfig(decode=decoder, keep_embedding=False)),
                      (f"--worm-width {width:.0f}", SegmentConfig(decode=decoder, keep_embedding=False, worm_width=width))):
        rows[f"brightfield at 2x magnification, {name}"] = run_set(
            model, [s.image for s in magnified], [s.instances for s in magnified], cfg, device)
    if args.bbbc010:
        from napari_semiconv.data.readers import read_bbbc010

        test = read_bbbc010(args.bbbc010, "test")
        rows["BBBC010 test split (C03-E04), brightfield"] = run_set(
            model, [a.image for a in test], [a.instances for a in test], SegmentConfig(decode=decoder, keep_embedding=False),
            device)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    peer_notes = []
    for name in ("cellpose", "embedseg"):  # written by benchmarks/<name>_peer.py in the peer's own venv
        peer = ROOT / "docs" / f"peer_{name}.json"
        if not peer.is_file():
            continue
        report = json.loads(peer.read_text())
        rows.update(report["rows"])
        train = report["training"]
        seen = (f"{train['epochs']} epochs, {train['images_seen']} images seen" if "epochs" in train
                else f"{train['steps']} steps of batch {train['batch_size']}")
        peer_notes.append(f"{name} rows: trained from scratch for {train['train_seconds'] / 60:.0f} min ({seen}; loss "
                          f"{train['loss_start']:.3f} -> {train['loss_end']:.3f}) on {report['machine']}, same test "
                          f"scenes and scorer, label image only (it cannot express overlaps); its settings and the "
                          f"thresholds it chose on validation scenes are in docs/peer_{name}.json. Command (its own "
                          f"venv): `{portable(report['command'])}`.")
    peer_note = "".join(f"\n\n{n}" for n in peer_notes)
    lines = ["| images | n | S@0.5 | S@0.7 | S@0.9 | avS | AP | AP50 | AP75 | s / image |", "|---" * 10 + "|"]
    for name, m in rows.items():
        lines.append(f"| {name} | {m['images']} | {m['S@0.5']:.3f} | {m['S@0.7']:.3f} | {m['S@0.9']:.3f} | "
                     f"{m['avS']:.3f} | {m['AP']:.3f} | {m['AP50']:.3f} | {m['AP75']:.3f} | {m['s_per_image']:.2f} |")
    machine = (f"{cpu_name()}, {torch.get_num_threads()} CPU threads" if device.type == "cpu"
               else torch.cuda.get_device_name(device) if device.type == "cuda" else device.type)
    section = (f"## {args.heading}\n\n"
               f"Model: `{model_name(model)}`. "
               f"Device: {device.type} ({machine}), torch {torch.__version__}. Peak resident memory {peak_mb:.0f} MB.\n"
               "S(t) = TP/(TP+FP+FN) at IoU > t (one-to-one), avS = mean over t = 0.5..0.9; AP is COCO mask AP "
               "(0.50:0.95). Seconds per image are end to end (read TIFF, normalize, forward, decode, write 3 files). "
               "The 2x magnification rows are brightfield scenes whose worms are twice as wide and long as the "
               "training worms, 3-8 per field (the quarter of a 1x field's 10-30 that a 2x field shows; before "
               "session 25 they held 10-30, 4x as crowded; before session 28 they bent twice as often along their bodies: a "
               "magnification now scales the worms' shape, texture and halo and the optics' blur), segmented as they are and with the worm width given (the "
               "image is resized to the model's training size for the network and the decoder, the worms mapped back; before session 36 the decoder ran at the image's own size). The TTA rows average the network over the 8 flips and quarter turns (`segment --tta`).\n\n"
               + "\n".join(lines) +
               f"\n\nCommand: `python benchmarks/accuracy.py --scenes {args.scenes} --device {args.device}"
               + (f" --bbbc010 {args.bbbc010}" if args.bbbc010 else "") + (f" --model {args.model}" if args.model else "")
               + "".join(f" --{k.replace('_', '-')} {v:g}" for k, v in given.items() if v is not None)
               + (f" --heading '{args.heading}'" if args.heading != HEADING else "") + "`" + peer_note + "\n")
    print(section)
    from report import replace_section

    replace_section(Path(args.report), f"## {args.heading}", section)


if __name__ == "__main__":
    main()
