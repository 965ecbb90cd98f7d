"""Peer side by side: cellpose 3 trained from scratch on our synthetic training scenes.

cellpose is not a dependency of the project; it runs in its own venv:

    python3 -m venv /tmp/cpvenv
    /tmp/cpvenv/bin/pip install torch==2.13.0
    /tmp/cpvenv/bin/pip install --no-deps cellpose==3.1.1.3
    /tmp/cpvenv/bin/pip install "numpy<2.1" scipy opencv-python-headless fastremap natsort tifffile \\
        tqdm roifile imagecodecs numba fill-voids
    /tmp/cpvenv/bin/pip install --no-deps -e .       # our generator and metrics only
    /tmp/cpvenv/bin/python benchmarks/cellpose_peer.py --minutes 40

Training scenes are full 696 x 520 fields of both styles with seeds below TRAIN_SEEDS (the
range our model trains on); the test scenes are exactly those of benchmarks/accuracy.py
(TEST_SEED0 + i). cellpose gets the label image (it cannot express overlaps) and is scored
against the (N, H, W) instance stacks like our model. Seconds per image are end to end: read the
TIFF, run cellpose, write the label TIFF. Writes docs/peer_cellpose.json, which
benchmarks/accuracy.py puts into its table. The pretrained ``cyto3`` weights are downloaded by
cellpose from the internet on first use; where that fails the row says so.
"""

import argparse
import json
import platform
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile
import torch

from napari_semiconv.data.sources import TEST_SEED0, TRAIN_SEEDS
from napari_semiconv.data.synthetic import SceneConfig, make_scene
from napari_semiconv.metrics import evaluate

ROOT = Path(__file__).resolve().parents[1]
STYLES = ("brightfield", "fluorescence")


def train_scenes(n: int, seed: int = 12345):
    """``n`` full training scenes (half of each style): images and (H, W) label images."""
    seeds = np.random.default_rng(seed).integers(TRAIN_SEEDS, size=n)
    scenes = [make_scene(int(s), SceneConfig(style=STYLES[i % 2])) for i, s in enumerate(seeds)]
    return [s.image.astype(np.float32) for s in scenes], [s.labels for s in scenes]


def train_cellpose(images, labels, minutes: float, workdir: Path):
    """Train a fresh cellpose net for about ``minutes`` of wall time; returns (model, info)."""
    from cellpose import dynamics, models, train

    model = models.CellposeModel(gpu=torch.cuda.is_available(), pretrained_model=None, model_type=None)
    t0 = time.perf_counter()
    flows = dynamics.labels_to_flows(labels, device=model.device)
    t_flows = time.perf_counter() - t0
    print(f"flows of {len(labels)} training images: {t_flows:.0f} s", flush=True)
    per_epoch = 64  # images drawn per epoch
    t0 = time.perf_counter()  # calibrate: seconds per epoch on this machine
    train.train_seg(model.net, images[:8], flows[:8], channels=[0, 0], n_epochs=2, nimg_per_epoch=per_epoch,
                    save_path=workdir, model_name="calibrate", min_train_masks=1)
    s_epoch = (time.perf_counter() - t0) / 2
    model = models.CellposeModel(gpu=torch.cuda.is_available(), pretrained_model=None, model_type=None)
    epochs = max(10, int(minutes * 60 / s_epoch))
    print(f"{s_epoch:.1f} s per epoch of {per_epoch} images: training {epochs} epochs", flush=True)
    t0 = time.perf_counter()
    path, losses, _ = train.train_seg(model.net, images, flows, channels=[0, 0], n_epochs=epochs,
                                      nimg_per_epoch=per_epoch, save_path=workdir, model_name="worms",
                                      min_train_masks=1)
    t_train = time.perf_counter() - t0
    model = models.CellposeModel(gpu=torch.cuda.is_available(), pretrained_model=str(path))
    info = {"epochs": epochs, "images_seen": epochs * per_epoch, "train_seconds": t_train,
            "flow_seconds": t_flows, "final_loss": float(losses[-1]), "training_images": len(images)}
    return model, info


def run_set(model, scenes, tmp: Path, diameter) -> dict:
    """Segment scenes through TIFF files (end to end) and score them like accuracy.py."""
    paths = []
    for i, s in enumerate(scenes):
        paths.append(tmp / f"im{i:03d}.tif")
        tifffile.imwrite(paths[-1], s.image)
    model.eval(tifffile.imread(paths[0]), channels=[0, 0], diameter=diameter)  # warm-up
    t0 = time.perf_counter()
    for p in paths:
        masks = model.eval(tifffile.imread(p), channels=[0, 0], diameter=diameter)[0]
        tifffile.imwrite(p.with_suffix(".labels.tif"), masks.astype(np.uint16))
    secs = (time.perf_counter() - t0) / len(paths)
    preds = [tifffile.imread(p.with_suffix(".labels.tif")) for p in paths]
    scores = [np.ones(len(np.unique(m)) - 1) for m in preds]  # cellpose gives no instance score
    m = evaluate(preds, scores, [s.instances for s in scenes])
    m["s_per_image"] = secs
    return m


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=40.0, help="training wall-time budget")
    ap.add_argument("--train-scenes", type=int, default=200)
    ap.add_argument("--scenes", type=int, default=5, help="test scenes per style (as accuracy.py)")
    ap.add_argument("--out", default=str(ROOT / "docs" / "peer_cellpose.json"))
    args = ap.parse_args(argv)
    import cellpose

    rows, info = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        images, labels = train_scenes(args.train_scenes)
        model, info = train_cellpose(images, labels, args.minutes, tmp)
        diameter = float(model.net.diam_labels.item())
        for style in STYLES:
            scenes = [make_scene(TEST_SEED0 + 1000 * (style == "fluorescence") + i, SceneConfig(style=style))
                      for i in range(args.scenes)]
            (tmp / style).mkdir()
            rows[f"cellpose 3 from scratch, {style}"] = run_set(model, scenes, tmp / style, diameter)
    try:
        from cellpose import models

        models.CellposeModel(model_type="cyto3")
        cyto3 = "loaded"
    except Exception as exc:  # noqa: BLE001, no internet on these machines: say why
        cyto3 = f"not evaluated: the weights could not be had offline ({type(exc).__name__}: {exc})"
    report = {"rows": rows, "training": info, "cyto3": cyto3, "cellpose": cellpose.version,
              "machine": f"{platform.machine()}, {torch.get_num_threads()} CPU threads, torch {torch.__version__}",
              "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
              "command": f"python benchmarks/cellpose_peer.py --minutes {args.minutes:g} "
                         f"--train-scenes {args.train_scenes} --scenes {args.scenes}"}
    Path(args.out).write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
