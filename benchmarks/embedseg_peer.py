"""Peer side by side: EmbedSeg (Lalit et al., MIDL 2021) trained from scratch on our synthetic scenes.

EmbedSeg is not a dependency of the project; it runs in its own venv. Its 0.2.5 wheel, and its
source archive as published, install the package's files loose into site-packages (its
pyproject's ``sources = ["EmbedSeg"]`` strips the folder), so the archive is unpacked and that
line removed before installing. Its test code imports tifffile's ``imsave`` (gone in 2025):

    python3 -m venv /tmp/esvenv
    /tmp/esvenv/bin/pip install torch==2.13.0          # first: the local CPU wheel
    /tmp/esvenv/bin/pip install "numpy<2.3" scipy scikit-image "tifffile<2025" numba pycocotools \\
        pandas matplotlib seaborn pillow tqdm
    cd /tmp && /tmp/esvenv/bin/pip download --no-binary :all: --no-deps embedseg==0.2.5 \\
        && tar xzf embedseg-0.2.5.tar.gz && sed -i '/^sources = \\["EmbedSeg"\\]/d' embedseg-0.2.5/pyproject.toml \\
        && /tmp/esvenv/bin/pip install --no-deps ./embedseg-0.2.5
    /tmp/esvenv/bin/pip install --no-deps -e /work/main     # our generator and metrics only
    OMP_NUM_THREADS=2 /tmp/esvenv/bin/python benchmarks/embedseg_peer.py --minutes 40 --threads 2

Recipe: EmbedSeg's BBBC010 example (examples/2d/bbbc010-2012): one-hot instances (worms
overlap), medoid centres, min-max-percentile (1, 99.8) normalization, crops centred on each worm
of side round_up_8(mean + 5 std of the worms' bounding-box sides), BranchedERFNet [4, 1]
(offsets, a learned 2-d bandwidth, seediness), SpatialEmbLoss with n_sigma 2, foreground weight
10, w_inst 1 / w_var 10 / w_seed 1 (Lovasz hinge), Adam lr 5e-4 with weight decay 1e-4 and the
poly (power 0.9) decay, batch 1, random 90-degree rotations and flips, grid 696 x 696 (the
largest test side rounded up to 8) of unit length. EmbedSeg's own model, loss, centre-image
code, clustering (``Cluster.cluster``), ``test.predict`` and 8-fold test-time augmentation
(``apply_tta_2d``) are imported; only the data feeding is ours (numpy crops of our scenes,
prepared exactly as ``generate_crops.process_one_hot`` does, without its TIFF round trip).

Changes from the recipe (also written to the JSON): training runs for a wall-clock budget
instead of 200 epochs, the poly decay runs over that budget; no validation crops and no
best-IoU checkpoint (the last weights are used); seed and foreground thresholds are chosen on
validation scenes (seeds VAL_SEED0 + 1000 * (style == "fluorescence") + i, never test scenes)
by mean avS, because the recipe's 0.9 seed threshold finds almost nothing after a short CPU run;
an instance's score (for AP) is the highest seediness inside it (EmbedSeg gives none; its
clustering visits seeds in that order); ``RandomRotationsAndFlips`` is re-implemented in numpy
(its module imports torchvision, which does not import beside this torch wheel); on a CPU-only
torch, ``apply_tta_2d``'s hard-coded ``.cuda()`` calls are made no-ops while it runs.

Test scenes are exactly those of benchmarks/accuracy.py (TEST_SEED0 + 1000 * (style ==
"fluorescence") + i). EmbedSeg's clustering yields a label image (no overlaps), scored against
the (N, H, W) instance stacks like our model. Seconds per image are end to end: read the TIFF,
normalize, forward (x8 with TTA), cluster, write the label TIFF. Writes docs/peer_embedseg.json.
"""

import json
import resource
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import tifffile
import torch
from report import cpu_name, peer_parser

from napari_semiconv.data.sources import TEST_SEED0, TRAIN_SEEDS, VAL_SEED0
from napari_semiconv.data.synthetic import FIELD, SceneConfig, make_scene
from napari_semiconv.metrics import evaluate

ROOT = Path(__file__).resolve().parents[1]
STYLES = ("brightfield", "fluorescence")
N_SIGMA = 2  # 2-d: learned bandwidth in y and x
FOREGROUND_WEIGHT = 10.0  # EmbedSeg's calculate_foreground_weight for 2-d data
LOSS_W = {"w_inst": 1, "w_var": 10, "w_seed": 1}  # create_loss_dict defaults (recipe)
LR, WEIGHT_DECAY, POLY_POWER = 5e-4, 1e-4, 0.9  # create_configs / begin_training
SEED_GRID = (0.5, 0.6, 0.7, 0.8, 0.9)
FG_GRID = (0.3, 0.4, 0.5, 0.6)
MAX_CLUSTER_SECONDS = 5.0  # per validation image: that seed threshold and lower ones are then skipped
MAX_INSTANCES = 300  # per validation image (our scenes hold at most 30 worms): likewise


def round_up_8(x) -> int:
    return (int(x) + 7) & (-8)


def normalize(image):
    from EmbedSeg.utils.generate_crops import normalize_min_max_percentile

    return normalize_min_max_percentile(image.astype(float), 1, 99.8, axis=(0, 1)).astype(np.float32)


def train_pool(n: int, seed: int):
    """``n`` full training scenes (half of each style), normalized, and the recipe's data properties."""
    seeds = np.random.default_rng(seed).integers(TRAIN_SEEDS, size=n)
    images, stacks, sy, sx, sizes = [], [], [], [], []
    for i, s in enumerate(seeds):
        scene = make_scene(int(s), SceneConfig(style=STYLES[i % 2]))
        images.append(normalize(scene.image))
        stacks.append(scene.instances)
        for m in scene.instances:  # calculate_object_size (one-hot, 2-d)
            y, x = np.nonzero(m)
            sy.append(y.max() - y.min())
            sx.append(x.max() - x.min())
            sizes.append(len(y))
    crop = max(round_up_8(np.mean(sy) + 5 * np.std(sy)), round_up_8(np.mean(sx) + 5 * np.std(sx)))
    crop = min(crop, (min(FIELD) // 8) * 8)  # a crop must fit the field (process_one_hot skips others)
    props = {"crop_size": crop, "min_object_size": int(np.min(sizes)), "mean_object_size": float(np.mean(sizes)),
             "avg_object_size_y": float(np.mean(sy)), "stdev_object_size_y": float(np.std(sy)),
             "avg_object_size_x": float(np.mean(sx)), "stdev_object_size_x": float(np.std(sx)),
             "n_y": round_up_8(max(FIELD)), "n_x": round_up_8(max(FIELD)), "foreground_weight": FOREGROUND_WEIGHT,
             "one_hot": True, "center": "medoid", "norm": "min-max-percentile"}
    return images, stacks, props


def crop_windows(stacks, crop: int):
    """One crop per worm, centred on its centroid and clipped to the field (process_one_hot)."""
    windows = []
    for k, inst in enumerate(stacks):
        h, w = inst.shape[1:]
        for j in range(len(inst)):
            y, x = np.nonzero(inst[j])
            jj = int(np.clip(np.mean(y) - crop / 2, 0, h - crop))
            ii = int(np.clip(np.mean(x) - crop / 2, 0, w - crop))
            if inst[j, jj:jj + crop, ii:ii + crop].any():
                windows.append((k, jj, ii))
    return windows


class CropFeeder:
    """EmbedSeg training samples from our scenes, made as process_one_hot + TwoDimensionalDataset do.

    Centre images (medoids of each worm's part inside the crop) are computed the first time a
    crop is drawn, with EmbedSeg's generate_center_image, and cached.
    """

    def __init__(self, images, stacks, windows, crop, rng):
        self.images, self.stacks, self.windows, self.crop, self.rng = images, stacks, windows, crop, rng
        self.centres = {}

    def __call__(self):
        from EmbedSeg.utils.generate_crops import generate_center_image, sparsify

        idx = int(self.rng.integers(len(self.windows)))  # TwoDimensionalDataset draws with replacement
        k, jj, ii = self.windows[idx]
        c = self.crop
        image = self.images[k][jj:jj + c, ii:ii + c]
        instance_crop = self.stacks[k][:, jj:jj + c, ii:ii + c]
        if idx not in self.centres:
            centre = generate_center_image(instance_crop.astype(np.uint16), "medoid",
                                           np.arange(len(instance_crop)), True)
            self.centres[idx] = np.argwhere(centre)
        centre = np.zeros((c, c), bool)
        centre[tuple(self.centres[idx].T)] = True
        instance = sparsify(instance_crop).astype(np.uint8)  # (D, Y, X), empty slices dropped
        label = instance.max(0)  # decode_instance: class map of the one-hot stack
        # RandomRotationsAndFlips (utils/transforms.py), in numpy: its module imports torchvision
        times, flip = int(self.rng.integers(4)), int(self.rng.integers(2))
        image, label, centre = (np.rot90(a, times, (0, 1)) for a in (image, label, centre))
        instance = np.rot90(instance, times, (1, 2))
        if flip:
            image, label, centre = (np.flip(a, 0) for a in (image, label, centre))
            instance = np.flip(instance, 1)
        as_t = lambda a: torch.from_numpy(np.ascontiguousarray(a))
        return (as_t(image)[None, None].float(), as_t(instance)[None].short(), as_t(label)[None].short(),
                as_t(centre)[None])


def train_embedseg(feeder, props, minutes: float, device, log_every: int = 25):
    """Train a fresh BranchedERFNet for ``minutes`` of wall time; returns (model, info)."""
    from EmbedSeg.criterions import get_loss
    from EmbedSeg.models import get_model

    model = get_model("branched_erfnet", {"num_classes": [4, 1], "input_channels": 1})
    model.init_output(N_SIGMA)
    model = model.to(device)
    criterion = get_loss(None, props["n_y"], props["n_x"], None, 1.0, 1.0, True,
                         {"n_sigma": N_SIGMA, "foreground_weight": props["foreground_weight"]}).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    budget = minutes * 60
    losses, curve, step = [], [], 0
    model.train()
    t0 = time.perf_counter()
    while (elapsed := time.perf_counter() - t0) < budget:
        for group in optimizer.param_groups:  # the recipe's poly decay, over the time budget
            group["lr"] = LR * (1 - elapsed / budget) ** POLY_POWER
        im, instances, labels, centres = (t.to(device) for t in feeder())
        output = model(im)
        loss = criterion(output, instances, labels, centres, **LOSS_W).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        step += 1
        if step % log_every == 0:
            mean = float(np.mean(losses[-log_every:]))
            curve.append((step, round(elapsed, 1), mean))
            print(f"step {step:5d}  {elapsed / 60:5.1f} min  loss {mean:.4f}  lr {optimizer.param_groups[0]['lr']:.2e}",
                  flush=True)
    t_train = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    n = max(1, min(log_every, len(losses) // 2))
    info = {"steps": step, "batch_size": 1, "train_seconds": t_train, "s_per_step": t_train / max(step, 1),
            "training_crops": len(feeder.windows), "distinct_crops_seen": len(feeder.centres),
            "recipe_epochs_equivalent": step / (2 * len(feeder.windows)),  # recipe: 2 x n_crops per epoch
            "loss_start": float(np.mean(losses[:n])), "loss_end": float(np.mean(losses[-n:])),
            "peak_rss_mb_after_training": rss, "loss_curve": curve}
    return model, info


@contextmanager
def cuda_calls_on_cpu():
    """apply_tta_2d moves its tensors with a hard-coded .cuda(); on a CPU-only torch make that a no-op."""
    if torch.cuda.is_available():
        yield
        return
    cuda = torch.Tensor.cuda
    torch.Tensor.cuda = lambda self, *a, **k: self
    try:
        yield
    finally:
        torch.Tensor.cuda = cuda


def forward(model, image, tta: bool, device):
    """EmbedSeg's output (1, 5, H, W) for one normalized (H, W) image, 8-fold TTA or not."""
    from EmbedSeg.utils.test_time_augmentation import apply_tta_2d

    im = torch.from_numpy(image)[None, None].float().to(device)
    with torch.no_grad(), cuda_calls_on_cpu():
        return apply_tta_2d(im, model).to(device) if tta else model(im)


def instance_scores(instance_map: np.ndarray, seed_map: np.ndarray) -> np.ndarray:
    """Highest seediness inside each instance, in the order of its sorted ids (as metrics.as_stack)."""
    ids = np.unique(instance_map)
    ids = ids[ids != 0]
    if len(ids) == 0:
        return np.zeros(0)
    from scipy import ndimage as ndi

    return np.asarray(ndi.maximum(seed_map, instance_map, ids), float).reshape(-1)


def choose_thresholds(model, props, n_val: int, tta: bool, device):
    """Seed and foreground thresholds by mean avS over ``n_val`` validation scenes of each style."""
    from EmbedSeg.utils.utils import Cluster

    cluster = Cluster(props["n_y"], props["n_x"], 1.0, 1.0, device)
    outputs, truths = [], []
    for style in STYLES:
        for i in range(n_val):
            scene = make_scene(VAL_SEED0 + 1000 * (style == "fluorescence") + i, SceneConfig(style=style))
            outputs.append(forward(model, normalize(scene.image), tta, device))
            truths.append(scene.instances)
    grid, skipped = {}, []
    for fg_t in FG_GRID:
        for seed_t in sorted(SEED_GRID, reverse=True):  # lower seed thresholds only cost more
            preds, scores, why = [], [], None
            t0 = time.perf_counter()
            for out in outputs:
                t1 = time.perf_counter()
                with torch.no_grad():
                    inst = cluster.cluster(out[0], n_sigma=N_SIGMA, seed_thresh=seed_t, fg_thresh=fg_t,
                                           min_object_size=props["min_object_size"]).cpu().numpy()
                n_inst = len(np.unique(inst)) - 1
                # EmbedSeg's loop takes one seed at a time: a half-trained seed map can stall it on tiny
                # proposals, and thousands of instances would swamp the scorer's memory. Lower seed
                # thresholds (for this fg) are only slower and more crowded, so they are skipped too.
                if time.perf_counter() - t1 > MAX_CLUSTER_SECONDS or n_inst > MAX_INSTANCES:
                    why = f"{time.perf_counter() - t1:.1f} s, {n_inst} instances on one image"
                    break
                preds.append(inst)
                scores.append(instance_scores(inst, torch.sigmoid(out[0, -1]).cpu().numpy()))
            if why:
                print(f"  val tta={tta} seed {seed_t} fg {fg_t}: skipped with lower seeds ({why})", flush=True)
                skipped += [f"seed {t}, fg {fg_t} ({why})" if t == seed_t else f"seed {t}, fg {fg_t}"
                            for t in SEED_GRID if t <= seed_t]
                break
            secs = (time.perf_counter() - t0) / len(outputs)
            m = evaluate(preds, scores, truths)
            grid[f"seed {seed_t}, fg {fg_t}"] = {"avS": m["avS"], "AP": m["AP"], "cluster_s_per_image": secs}
            print(f"  val tta={tta} seed {seed_t} fg {fg_t}: avS {m['avS']:.3f} AP {m['AP']:.3f} "
                  f"({secs:.2f} s/image clustering)", flush=True)
    if not grid:
        raise SystemExit("no threshold pair gave a usable segmentation of the validation scenes")
    best = max(grid, key=lambda k: (grid[k]["avS"], grid[k]["AP"]))
    seed_t, fg_t = (float(v.split()[1]) for v in best.split(", "))
    return {"seed_thresh": seed_t, "fg_thresh": fg_t, "val_avS": grid[best]["avS"], "val_scenes_per_style": n_val,
            "grid": grid, "skipped": skipped}


def run_set(model, scenes, tmp: Path, thresholds, props, tta: bool, device) -> dict:
    """Segment scenes through TIFF files (end to end) with EmbedSeg's test.predict and score them."""
    from EmbedSeg.test import predict
    from EmbedSeg.utils.utils import Cluster

    cluster = Cluster(props["n_y"], props["n_x"], 1.0, 1.0, device)
    tmp.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, s in enumerate(scenes):
        paths.append(tmp / f"im{i:03d}.tif")
        tifffile.imwrite(paths[-1], s.image)

    def segment(path):
        im = torch.from_numpy(normalize(tifffile.imread(path)))[None, None].to(device)
        with torch.no_grad(), cuda_calls_on_cpu():
            inst, seed_map = predict(im, model, tta, True, N_SIGMA, thresholds["fg_thresh"],
                                     thresholds["seed_thresh"], 0, 0, props["min_object_size"], cluster, device)
        inst = inst.cpu().numpy().astype(np.uint16)
        tifffile.imwrite(path.with_suffix(".labels.tif"), inst)
        np.save(path.with_suffix(".scores.npy"), instance_scores(inst, seed_map.cpu().numpy()))

    segment(paths[0])  # warm-up
    t0 = time.perf_counter()
    for p in paths:
        segment(p)
    secs = (time.perf_counter() - t0) / len(paths)
    preds = [tifffile.imread(p.with_suffix(".labels.tif")) for p in paths]
    scores = [np.load(p.with_suffix(".scores.npy")) for p in paths]
    m = evaluate(preds, scores, [s.instances for s in scenes])
    m["s_per_image"] = secs
    return m


def main(argv=None):
    ap = peer_parser(__doc__, "embedseg", 100, "full training scenes (one crop per worm)")
    ap.add_argument("--no-tta", action="store_true", help="skip the 8-fold test-time augmentation rows")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    from importlib.metadata import version

    t0 = time.perf_counter()
    images, stacks, props = train_pool(args.train_scenes, 12345 + args.seed)
    windows = crop_windows(stacks, props["crop_size"])
    t_prep = time.perf_counter() - t0
    print(f"{len(images)} training scenes, {len(windows)} crops of {props['crop_size']} px "
          f"({t_prep:.0f} s); min object size {props['min_object_size']} px", flush=True)
    feeder = CropFeeder(images, stacks, windows, props["crop_size"], np.random.default_rng(args.seed))
    model, info = train_embedseg(feeder, props, args.minutes, device)
    info.update(prep_seconds=t_prep, train_scenes=args.train_scenes)
    print(f"{info['steps']} steps in {info['train_seconds'] / 60:.1f} min ({info['s_per_step']:.2f} s/step); "
          f"loss {info['loss_start']:.4f} -> {info['loss_end']:.4f}", flush=True)
    del images, stacks, feeder
    model.eval()
    rows, thresholds = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for tta in (False,) if args.no_tta else (False, True):
            key = "tta" if tta else "no_tta"
            t0 = time.perf_counter()
            thresholds[key] = choose_thresholds(model, props, args.val_scenes, tta, device)
            thresholds[key]["seconds"] = time.perf_counter() - t0
            print(f"chosen ({key}): seed {thresholds[key]['seed_thresh']}, fg {thresholds[key]['fg_thresh']} "
                  f"(val avS {thresholds[key]['val_avS']:.3f})", flush=True)
            for style in STYLES:
                scenes = [make_scene(TEST_SEED0 + 1000 * (style == "fluorescence") + i, SceneConfig(style=style))
                          for i in range(args.scenes)]
                name = f"EmbedSeg from scratch, {style}, label image" + (", 8-fold TTA" if tta else "")
                rows[name] = run_set(model, scenes, tmp / f"{style}-{key}", thresholds[key], props, tta, device)
                print(name, json.dumps({k: round(v, 4) for k, v in rows[name].items()}), flush=True)
    report = {
        "rows": rows,
        "training": info,
        "minutes": args.minutes,
        "thresholds": thresholds,
        "data_properties": props,
        "recipe": "EmbedSeg examples/2d/bbbc010-2012 (01-data, 02-train, 03-predict)",
        "changes_from_recipe": [
            (f"trained for a {args.minutes:g}-minute wall-clock budget ({info['steps']} steps of batch 1, "
            f"{info['recipe_epochs_equivalent']:.2f} recipe epochs of 2 x {info['training_crops']} crops) "
            "instead of 200 epochs; the poly (0.9) learning-rate decay runs over that budget"),
            "no validation crops and no best-IoU checkpoint: the last weights are used",
            ("seed and foreground thresholds chosen on validation scenes by mean avS over a grid "
            f"(seed {list(SEED_GRID)}, fg {list(FG_GRID)}) instead of the recipe's 0.9 / 0.5; for each fg, seed "
            f"thresholds are skipped from the first that takes over {MAX_CLUSTER_SECONDS:g} s or gives over "
            f"{MAX_INSTANCES} instances on a validation image"),
            "instance score for AP: the highest seediness inside the instance (EmbedSeg gives none)",
            (f"training data: {args.train_scenes} of our synthetic full scenes (half brightfield, half "
            "fluorescence), one crop per worm, fed from memory (no TIFF crops on disk); crop size "
            f"{props['crop_size']} by the recipe's formula on these worms"),
            ("RandomRotationsAndFlips re-implemented in numpy (EmbedSeg.utils.transforms imports torchvision); "
            "fill_label_holes not applied (our worm masks have no holes)"),
            "test-time augmentation: EmbedSeg's apply_tta_2d with its .cuda() calls made no-ops on CPU",
            f"CPU training with {args.threads} torch thread(s) instead of a GPU",
        ],
        "embedseg": version("EmbedSeg"),
        "machine": f"{cpu_name()}, {torch.get_num_threads()} CPU threads, torch {torch.__version__}",
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "command": f"OMP_NUM_THREADS={args.threads} python benchmarks/embedseg_peer.py --minutes {args.minutes:g} "
                   f"--threads {args.threads} --train-scenes {args.train_scenes} --val-scenes {args.val_scenes} "
                   f"--scenes {args.scenes} --seed {args.seed}" + (" --no-tta" if args.no_tta else "")
                   + ("" if Path(args.out).resolve() == (ROOT / "docs" / "peer_embedseg.json").resolve()
                      else f" --out {args.out}"),
        "argv": sys.argv,
    }
    Path(args.out).write_text(json.dumps(report, indent=1))
    print(json.dumps({k: v for k, v in report.items() if k not in ("thresholds",)}, indent=1))


if __name__ == "__main__":
    main()
