"""Peer side by side: cellpose 3 trained from scratch on our synthetic training scenes.

cellpose is not a dependency of the project; it runs in its own venv:

    python3 -m venv /tmp/cpvenv
    /tmp/cpvenv/bin/pip install torch==2.13.0
    /tmp/cpvenv/bin/pip install --no-deps cellpose==3.1.1.3
    /tmp/cpvenv/bin/pip install "numpy<2.1" scipy opencv-python-headless fastremap natsort tifffile \\
        tqdm roifile imagecodecs numba fill-voids
    /tmp/cpvenv/bin/pip install --no-deps -e .       # our generator and metrics only
    OMP_NUM_THREADS=1 /tmp/cpvenv/bin/python benchmarks/cellpose_peer.py --minutes 40 --threads 1

Training: ``--train-scenes`` full 696 x 520 scenes of both styles (seeds below TRAIN_SEEDS, the
range our model trains on), given to cellpose as label images, flows computed once by cellpose's
``dynamics.labels_to_flows``. ``train.train_seg`` runs with cellpose's defaults (AdamW, lr 0.005,
weight decay 1e-5, batch 8, 224 px crops, rescaled to diam_mean 30 by each image's diameter,
every training image once per epoch) and is stopped at an epoch boundary when the next epoch would
pass ``--minutes`` of wall time (no separate calibration run). It is called with n_epochs=10000, so
its learning-rate schedule is 10 warm-up epochs then constant: the same schedule cellpose uses for
any n_epochs <= 100 (it decays only in the last 50-100 epochs of longer runs). The loss of every
epoch is printed.

Evaluation: cellpose's mask reconstruction (flow_threshold, cellprob_threshold, niter) was made for
round cells; the three are chosen on validation scenes (seeds VAL_SEED0 + 1000 + i, both styles:
never training or test scenes) from a small grid that includes cellpose's defaults. The test
scenes are exactly those of benchmarks/accuracy.py (TEST_SEED0 + 1000 * fluorescence + i), plus
the binary-foreground input (the instances' union as the image) of the brightfield test scenes.
The diameter at eval is the model's diam_labels (the mean training diameter, cellpose 3.1's default
when diameter is None): the image is resized by diam_mean / diam_labels, the same factor training
used. cellpose is scored on its label image (it cannot express overlaps) against the (N, H, W)
instance stacks like our model; it gives no instance score, so its AP ranks instances arbitrarily.
Seconds per image are end to end: read the TIFF, run cellpose, write the label TIFF.

Writes docs/peer_cellpose.json (``--out``), which benchmarks/accuracy.py puts into its table. The
pretrained ``cyto3`` weights are downloaded by cellpose from the internet on first use; where that
fails (no internet here) the JSON says so.
"""

import json
import logging
import os
import resource
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile
import torch
from report import cpu_name, peer_parser

from napari_semiconv.data.sources import TEST_SEED0, TRAIN_SEEDS, VAL_SEED0
from napari_semiconv.data.synthetic import SceneConfig, make_scene
from napari_semiconv.metrics import S_THRESHOLDS, evaluate, iou_matrix, s_of_iou

STYLES = ("brightfield", "fluorescence")
CHANNELS = [0, 0]  # grayscale
N_EPOCHS_CAP = 10000  # train_seg's n_epochs: large, so its LR schedule is warm-up then constant
# mask reconstruction grid (cellpose defaults: flow_threshold 0.4, cellprob_threshold 0, niter x1)
FLOW_THRESHOLDS = (0.4, 0.0, 0.8, 1.5)  # 0 = the flow-error check off
CELLPROB_THRESHOLDS = (0.0, -1.0, 1.0)
NITER_FACTORS = (1, 3, 6)  # x cellpose's default niter (200 / rescale); 3 won at the old grid's edge


class StopTraining(Exception):
    """Raised from inside train_seg at an epoch boundary when the wall-clock budget is spent."""


def train_scenes(n: int, styles=STYLES, seed: int = 12345, min_masks: int = 5):
    """``n`` full training scenes (cycling through ``styles``) with at least ``min_masks`` worms (train_seg's
    min_train_masks would silently drop the others): float32 images and (H, W) label images."""
    rng, images, labels = np.random.default_rng(seed), [], []
    while len(images) < n:
        s = make_scene(int(rng.integers(TRAIN_SEEDS)), SceneConfig(style=styles[len(images) % len(styles)]))
        if len(np.unique(s.labels)) - 1 >= min_masks:
            images.append(s.image.astype(np.float32))
            labels.append(s.labels)
    return images, labels


def split_fragments(lab: np.ndarray, min_piece: int = 30) -> np.ndarray:
    """Each connected piece of each label its own label (pieces under ``min_piece`` px, slivers beside a
    covering worm, dropped). A worm covered by a later one is cut into pieces in the label image (38 % of
    the labels of 40 training scenes); cellpose diffuses from ONE centre pixel per label
    (dynamics.masks_to_flows_cpu), so the pieces without the centre get flow 0 with cellprob 1."""
    from scipy import ndimage as ndi

    out, n = np.zeros(lab.shape, np.int32), 0
    for k, sl in enumerate(ndi.find_objects(lab), 1):
        if sl is None:
            continue
        cc, m = ndi.label(lab[sl] == k)
        size = np.bincount(cc.ravel(), minlength=m + 1)
        for j in range(1, m + 1):
            if size[j] >= min_piece or m == 1:
                n += 1
                out[sl][cc == j] = n
    return out


def training_flows(labels, device, split: bool):
    """labels_to_flows; with ``split`` the flows come from split_fragments(labels) but channel 0 keeps the
    worm labels, so train_seg's diameters (diam_labels, the rescale) and mask counts stay per worm
    (train_seg trains on channels 1: only, train.py _get_batch)."""
    from cellpose import dynamics

    if not split:
        return dynamics.labels_to_flows(labels, device=device)
    flows = dynamics.labels_to_flows([split_fragments(lab) for lab in labels], device=device)
    for f, lab in zip(flows, labels):
        f[0] = lab
    return flows


def lr_at(epoch: int, lr: float) -> float:
    """train_seg's learning rate at ``epoch`` for n_epochs = N_EPOCHS_CAP (warm-up then constant)."""
    return float(np.linspace(0, lr, 10)[epoch]) if epoch < 10 else lr


def train_cellpose(images, labels, minutes: float, workdir: Path, lr: float, nimg_per_epoch, split: bool = False,
                   diam_mean: float = 30.0):
    """Train a fresh cellpose net with train_seg for about ``minutes`` of wall time; returns (model, info)."""
    from cellpose import models, train

    gpu = torch.cuda.is_available()
    model = models.CellposeModel(gpu=gpu, pretrained_model=None, model_type=None, diam_mean=diam_mean)  # random init
    t0 = time.perf_counter()
    flows = training_flows(labels, model.device, split)
    t_flows = time.perf_counter() - t0
    print(f"flows of {len(labels)} training images: {t_flows:.0f} s", flush=True)

    per_epoch = len(images) if nimg_per_epoch is None else nimg_per_epoch
    batches = -(-per_epoch // 8)  # train_seg's batch_size 8
    budget = minutes * 60
    log = {"losses": [], "epoch_losses": [], "epoch_ends": [], "calls": 0}
    original_loss = train._loss_fn_seg

    def loss_with_log(lbl, y, device):  # same loss; records it, prints each epoch, stops on budget
        k = log["calls"]
        log["calls"] += 1
        epoch, first = divmod(k, batches)
        now = time.perf_counter() - t_start
        if first == 0 and epoch > 0:
            ends = log["epoch_ends"]
            loss = float(np.mean(log["losses"][-batches:]))
            log["epoch_losses"].append(loss)
            ends.append(now)
            per = (ends[-1] - ends[0]) / (len(ends) - 1) if len(ends) > 1 else ends[0]
            print(f"epoch {epoch - 1:4d}  loss {loss:.4f}  lr {lr_at(epoch - 1, lr):.5f}  "
                  f"{now / 60:5.1f} min  ({per:.0f} s/epoch)", flush=True)
            if now + per > budget:
                raise StopTraining
        out = original_loss(lbl, y, device)
        log["losses"].append(float(out.item()))
        return out

    train._loss_fn_seg = loss_with_log
    t_start = time.perf_counter()
    try:
        train.train_seg(model.net, images, flows, channels=CHANNELS, n_epochs=N_EPOCHS_CAP, learning_rate=lr,
                        nimg_per_epoch=nimg_per_epoch, save_path=workdir, model_name="worms",
                        save_every=10 * N_EPOCHS_CAP)
    except StopTraining:
        pass
    finally:
        train._loss_fn_seg = original_loss
    t_train = time.perf_counter() - t_start
    path = workdir / "models" / "worms_final"
    path.parent.mkdir(parents=True, exist_ok=True)
    model.net.save_model(str(path))  # weights after the last finished epoch (and diam_labels)
    model = models.CellposeModel(gpu=gpu, pretrained_model=str(path))
    epochs = len(log["epoch_losses"])
    el = log["epoch_losses"]
    info = {"epochs": epochs, "images_seen": epochs * per_epoch, "images_per_epoch": per_epoch,
            "train_seconds": t_train, "flow_seconds": t_flows, "training_images": len(images),
            "loss_start": el[0] if el else None,  # epoch 0 (train_seg's lr is 0 there: the untrained net)
            "loss_end": float(np.mean(el[-3:])) if el else None,  # mean of the last 3 epochs
            "final_loss": el[-1] if el else None, "epoch_losses": [round(v, 4) for v in el],
            "diam_labels": float(model.diam_labels), "diam_mean": float(model.diam_mean)}
    return model, info


def avs(pred, gt) -> float:
    iou = iou_matrix(pred, gt)
    return float(np.mean([s_of_iou(iou, t) for t in S_THRESHOLDS]))


def tune_masks(model, scenes, diameter: float) -> dict:  # called once per style
    """Choose (flow_threshold, cellprob_threshold, niter) by mean avS on validation scenes."""
    from cellpose import dynamics, utils

    niter0 = 200 * diameter / float(model.diam_mean)  # eval's default: 200 / rescale
    grid = {}
    for s in scenes:
        _, flows, _ = model.eval(s.image, channels=CHANNELS, diameter=diameter, compute_masks=False)
        dp, cellprob = flows[1], flows[2]
        for ct in CELLPROB_THRESHOLDS:
            for nf in NITER_FACTORS:
                # as CellposeModel.eval: compute_masks, flow check, then holes and min_size 15
                m0 = dynamics.compute_masks(dp, cellprob, niter=niter0 * nf, cellprob_threshold=ct,
                                            flow_threshold=0, device=model.device)
                for ft in FLOW_THRESHOLDS:
                    m = m0
                    if ft > 0 and m0.max() > 0:
                        m = dynamics.remove_bad_flow_masks(m0.copy(), dp, threshold=ft, device=model.device)
                    m = utils.fill_holes_and_remove_small_masks(m, min_size=15)
                    grid.setdefault((ft, ct, nf), []).append(avs(m, s.instances))
    table = [{"flow_threshold": ft, "cellprob_threshold": ct, "niter_factor": nf, "val_avS": float(np.mean(v))}
             for (ft, ct, nf), v in grid.items()]
    table.sort(key=lambda r: -r["val_avS"])
    default = next(r for r in table if (r["flow_threshold"], r["cellprob_threshold"], r["niter_factor"]) == (0.4, 0, 1))
    return {"best": table[0], "cellpose_default": default, "grid": table, "niter_default": niter0}


def run_set(model, images, truths, tmp: Path, diameter: float, params: dict) -> dict:
    """Segment images through TIFF files (end to end) and score them like accuracy.py."""
    from cellpose import dynamics, utils

    kw = {"channels": CHANNELS, "diameter": diameter, "flow_threshold": params["flow_threshold"],
          "cellprob_threshold": params["cellprob_threshold"], "niter": params["niter"]}
    tmp.mkdir()
    paths = []
    for i, im in enumerate(images):
        paths.append(tmp / f"im{i:03d}.tif")
        tifffile.imwrite(paths[-1], im)
    model.eval(tifffile.imread(paths[0]), **kw)  # warm-up
    t, flows = 0.0, []
    for p in paths:
        t0 = time.perf_counter()
        masks, fl, _ = model.eval(tifffile.imread(p), **kw)
        tifffile.imwrite(p.with_suffix(".labels.tif"), masks.astype(np.uint16))
        t += time.perf_counter() - t0
        flows.append((fl[1], fl[2]))
    preds = [tifffile.imread(p.with_suffix(".labels.tif")) for p in paths]
    scores = [np.ones(len(np.unique(m)) - 1) for m in preds]  # cellpose gives no instance score
    m = evaluate(preds, scores, truths)
    m["s_per_image"] = t / len(paths)
    m["masks_per_image"] = float(np.mean([len(s) for s in scores]))
    m["worms_per_image"] = float(np.mean([len(g) for g in truths]))
    # the same network output at cellpose's default mask thresholds (not timed; for reference)
    dflt = [utils.fill_holes_and_remove_small_masks(
        dynamics.compute_masks(dp, cp, niter=200 * diameter / float(model.diam_mean), device=model.device),
        min_size=15) for dp, cp in flows]
    d = evaluate(dflt, [np.ones(len(np.unique(x)) - 1) for x in dflt], truths)
    m["at_cellpose_default_thresholds"] = {k: d[k] for k in ("S@0.5", "avS", "AP50")}
    m["network_output"] = network_diagnostics(flows, truths, model.device)
    return m


def network_diagnostics(flows, truths, device) -> dict:
    """What the net outputs on the true worms: tells a detection failure (cellprob) from a flow failure.
    cellpose's flow check drops a mask when mean |dP/5 - mask flows|^2 > flow_threshold: with flows of
    magnitude a (< 1) in the right direction that is (1 - a)^2, so a < 0.37 loses every mask at 0.4."""
    from cellpose import dynamics

    rec, mag, cos = [], [], []
    for (dp, cp), gt in zip(flows, truths):
        lab = np.zeros(gt.shape[1:], np.int32)
        for i, g in enumerate(gt, 1):
            lab[g] = i
        if lab.max() == 0:
            continue
        mu = dynamics.masks_to_flows(lab, device=device)
        fg = lab > 0
        v = dp[:, fg] / 5.0
        rec.append(float((cp[fg] > 0).mean()))
        mag.append(float(np.median(np.hypot(v[0], v[1]))))
        ok = np.hypot(mu[0][fg], mu[1][fg]) > 0.5
        cos.append(float(np.median(((v * mu[:, fg]).sum(0) / (np.hypot(v[0], v[1]) + 1e-6))[ok])))
    return {"cellprob_recall_on_worms": float(np.mean(rec)), "median_flow_magnitude_on_worms": float(np.mean(mag)),
            "median_cosine_to_true_flows": float(np.mean(cos))}


def main(argv=None):
    ap = peer_parser(__doc__, "cellpose", 40, "full training scenes, half of each style")
    ap.add_argument("--lr", type=float, default=0.005, help="train_seg learning_rate (cellpose default)")
    ap.add_argument("--nimg-per-epoch", type=int, default=None,
                    help="train_seg nimg_per_epoch (default: cellpose's, all training images)")
    ap.add_argument("--styles", default=",".join(STYLES),
                    help="styles trained AND tested, comma separated; 'brightfield' is the other team's setup")
    ap.add_argument("--split-fragments", action="store_true",
                    help="flows from each connected piece of each label (channel 0 keeps the worm labels)")
    ap.add_argument("--diam-mean", type=float, default=30.0, help="CellposeModel diam_mean (rescale = diam_mean / diam_labels)")
    ap.add_argument("--keep-model", default=None, help="copy the trained weights here (the temp dir is deleted)")
    args = ap.parse_args(argv)
    import cellpose
    import cv2

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    logging.basicConfig(level=logging.WARNING, format="%(name)s %(levelname)s %(message)s", stream=sys.stdout)
    command = (f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '(unset)')} python "
               f"benchmarks/cellpose_peer.py {shlex.join(sys.argv[1:] if argv is None else argv)}")
    load0, t_all = os.getloadavg(), time.perf_counter()
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        styles = tuple(args.styles.split(","))
        images, labels = train_scenes(args.train_scenes, styles)
        model, info = train_cellpose(images, labels, args.minutes, tmp, args.lr, args.nimg_per_epoch,
                                     split=args.split_fragments, diam_mean=args.diam_mean)
        if args.keep_model:
            import shutil

            shutil.copy(tmp / "models" / "worms_final", args.keep_model)
        del images, labels
        diameter = float(model.diam_labels)
        print(f"trained {info['epochs']} epochs ({info['images_seen']} images) in {info['train_seconds'] / 60:.1f} "
              f"min; loss {info['loss_start']} -> {info['loss_end']}; diam_labels {diameter:.1f}", flush=True)
        tunings, all_params = {}, {}
        for style in styles:  # thresholds chosen per style (on that style's validation scenes)
            t0 = time.perf_counter()
            val = [make_scene(VAL_SEED0 + 1000 + i, SceneConfig(style=style))
                   for i in range(args.val_scenes)]
            tuning = tunings[style] = tune_masks(model, val, diameter)
            tuning["seconds"] = time.perf_counter() - t0
            best = tuning["best"]
            all_params[style] = {
                "flow_threshold": best["flow_threshold"], "cellprob_threshold": best["cellprob_threshold"],
                "niter": None if best["niter_factor"] == 1 else tuning["niter_default"] * best["niter_factor"]}
            print(f"validation {style}: best {best}, cellpose defaults {tuning['cellpose_default']['val_avS']:.3f} "
                  f"({tuning['seconds']:.0f} s)", flush=True)
        for style in styles:
            params = all_params[style]
            scenes = [make_scene(TEST_SEED0 + 1000 * (style == "fluorescence") + i, SceneConfig(style=style))
                      for i in range(args.scenes)]
            truths = [s.instances for s in scenes]
            rows[f"cellpose 3 from scratch, {style}"] = run_set(
                model, [s.image for s in scenes], truths, tmp / style, diameter, params)
            print(f"{style}: avS {rows[f'cellpose 3 from scratch, {style}']['avS']:.3f}", flush=True)
            if style == "brightfield":
                name = "cellpose 3 from scratch, brightfield, binary foreground input"
                rows[name] = run_set(model, [t.any(0).astype(np.uint8) for t in truths], truths,
                                     tmp / "binary", diameter, params)
                print(f"binary foreground: avS {rows[name]['avS']:.3f}", flush=True)
    try:
        from cellpose import models

        models.CellposeModel(model_type="cyto3")
        cyto3 = "loaded"
    except Exception as exc:  # noqa: BLE001, no internet on these machines: say why
        cyto3 = f"not evaluated: the weights could not be had offline ({type(exc).__name__}: {exc})"
    changed = {
        "pretrained_model": "None (random init, trained from scratch)",
        "n_epochs": f"{N_EPOCHS_CAP} passed, training stopped at an epoch boundary by the --minutes budget "
                    f"({info['epochs']} epochs done); the LR schedule is then cellpose's for n_epochs <= 100",
        "save_every": "never during training (the final weights are saved once)",
        "eval flow_threshold, cellprob_threshold, niter": (
            f"per style {all_params} (defaults 0.4, 0.0, 200 / rescale = {tuning['niter_default']:.0f}; "
            "flow_threshold 0 = check off, niter None = default)"),
        "threshold choice": (f"chosen per style on {args.val_scenes} validation scenes of that style (seeds "
                             "VAL_SEED0 + 1000 + i), never on the test scenes; grids and scores under 'tuning'; "
                             f"chosen: {all_params}"),
        "unchanged": f"train_seg lr {args.lr}, AdamW, weight decay 1e-5, batch 8, bsize 224, rescale by diameter, "
                     f"scale_range 0.5, min_train_masks 5, nimg_per_epoch {info['images_per_epoch']}, "
                     f"channels {CHANNELS}, normalize (1-99 percentiles), eval diameter = diam_labels "
                     f"({diameter:.1f}, rescale {float(model.diam_mean) / diameter:.2f})",
    }
    report = {"rows": rows, "training": info, "settings_changed_from_cellpose_defaults": changed, "tuning": tunings,
              "cyto3": cyto3, "cellpose": cellpose.version,
              "machine": f"{cpu_name()}, {args.threads} CPU threads, torch {torch.__version__}",
              "cpu": f"{cpu_name()}, {os.cpu_count()} cores; load average {load0[0]:.1f} at start, "
                     f"{os.getloadavg()[0]:.1f} at end (other jobs share the machine when > threads)",
              "minutes_total": (time.perf_counter() - t_all) / 60,
              "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
              "command": command}
    Path(args.out).write_text(json.dumps(report, indent=1))
    print(json.dumps({k: v for k, v in report.items() if k not in ("tuning",)}, indent=1))


if __name__ == "__main__":
    main()
