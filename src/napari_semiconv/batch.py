"""Folders of images in, result files out: segment files and score a folder of results (no Qt, no CLI).

``segment_files`` writes per image ``<stem>_labels.tif`` (uint16), ``<stem>_instances.tif`` (uint8
(N, H, W) overlap stack) and ``<stem>_instances.csv``, each atomically; ``evaluate_dirs`` scores such
a folder against ground-truth files.
"""

from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np

from .atomic import atomic_write, check_writable
from .errors import SemiconvError

STACK_LIMIT = 2**30  # bytes of the largest (N, H, W) instance stack the CLI writes


def _write_tif(path, array: np.ndarray) -> None:
    import tifffile

    tifffile.imwrite(path, array, compression="zlib")


OUTPUT_SUFFIXES = ("_labels", "_instances")  # file stems this module writes (never taken as inputs)


def planes_of(image: np.ndarray, name: str) -> list[np.ndarray]:
    """An ``(H, W)`` plane or a ``(T/Z, H, W)`` stack -> its checked ``(H, W)`` planes (RGB(A) refused)."""
    from .normalize import check_image

    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[-1] not in (3, 4):
        return [check_image(plane, name=f"{name} plane {t}") for t, plane in enumerate(arr)]
    return [check_image(arr, name=name)]


def _inputs(paths) -> list[Path]:
    """Image files and folders -> image paths without this module's own outputs; same stems refused (their
    outputs would collide)."""
    from .data.readers import list_images

    paths = [p for p in list_images(paths) if not p.stem.endswith(OUTPUT_SUFFIXES)]
    if not paths:
        raise SemiconvError("no input images (only *_labels / *_instances outputs were given)")
    stems: dict[str, Path] = {}
    for p in paths:
        if p.stem in stems:
            raise SemiconvError(f"{stems[p.stem]} and {p} have the same name {p.stem!r}: their results would "
                                "overwrite each other in the output folder; rename one or segment them into separate folders")
        stems[p.stem] = p
    return paths


SUMMARY = "segment_summary.csv"  # one row per input image, in the output folder


def _done(p: Path, out: Path) -> bool:
    """Whether ``p``'s results are complete in ``out``: its CSV (written last) and labels, newer than ``p``."""
    csv, labels = out / f"{p.stem}_instances.csv", out / f"{p.stem}_labels.tif"
    return csv.is_file() and labels.is_file() and csv.stat().st_mtime >= p.stat().st_mtime


def segment_files(paths, out: Path, model, config, quiet: bool = False,
                  progress: Callable[[str, int, int], None] | None = None, workers: int = 0,
                  threads: int = 1, redo: bool = False) -> list[int]:
    """Segment image files (or the images in folders) into ``out``: <stem>_labels.tif, _instances.tif, _instances.csv.

    A 2-D image gives a ``(H, W)`` uint16 labels image and the ``(N, H, W)`` uint8 stack that keeps
    overlaps (left out, said on the console, where it would exceed STACK_LIMIT bytes); a ``(T/Z, H,
    W)`` stack is segmented plane by plane into ``(T, H, W)`` labels, one instance stack per plane
    (``<stem>_t003_instances.tif``) and one CSV with a ``plane`` column. All inputs are read and
    checked first; files this function wrote earlier (``*_labels``, ``*_instances``) are not inputs;
    each output file is written atomically, the CSV last, so an interrupted run leaves every image
    either done or not started: a re-run skips the images already done (``redo`` = segment them again).
    ``workers`` > 0 spreads the images over that many worker processes of a Dask LocalCluster (the
    model sent once to each), each with ``threads`` torch threads. ``progress(stage, done, total)`` is
    called per tile (in this process only). Writes ``segment_summary.csv`` (image, status, worms,
    planes, seconds) and returns the number of worms per image (summed over planes), in input order.
    """
    from tqdm import tqdm

    from .data.readers import read_image
    from .normalize import check_binary

    if workers < 0 or threads < 1:
        raise SemiconvError(f"{workers} workers with {threads} threads each: give 0 or more workers (0 = no "
                            "cluster) and at least 1 thread")
    paths = _inputs(paths)
    for p in paths:  # check everything before writing anything
        for plane in planes_of(read_image(p), str(p)):
            if config.binary:
                check_binary(plane, name=str(p))
    check_writable(out, folder=True)
    todo = [p for p in paths if redo or not _done(p, out)]
    rows = {p: {"image": str(p), "status": "done before", "worms": _csv_rows(out / f"{p.stem}_instances.csv"),
                "planes": "", "seconds": ""} for p in paths if p not in todo}
    if rows and not quiet:
        tqdm.write(f"{len(rows)} of {len(paths)} images already segmented in {out}: skipped (--redo to redo them)")
    bar = tqdm(total=len(todo), desc="segment", unit="image", disable=quiet)
    for p, row in _run(todo, out, model, config, workers, threads, progress, quiet):
        rows[p] = row
        bar.update()
        if not quiet:
            tqdm.write(f"{p.name}: {row['worms']} worms" + (f" in {row['planes']} planes" if row["planes"] > 1 else ""))
    bar.close()
    summary = [rows[p] for p in paths]
    atomic_write(out / SUMMARY, partial(_write_summary, rows=summary))
    return [int(r["worms"]) for r in summary]


def _run(todo, out, model, config, workers, threads, progress, quiet):
    """Yield (path, summary row) per image as each finishes: here, or on a Dask LocalCluster of ``workers``."""
    if workers <= 0:
        from tqdm import tqdm

        tiles = tqdm(desc="tiles", unit="tile", leave=False, disable=quiet)

        def show(stage, done, total):  # big planes advance tile by tile
            if stage in ("network", "tiles"):
                tiles.total, tiles.n = total, done
                tiles.refresh()
            if progress is not None:
                progress(stage, done, total)

        for p in todo:
            yield p, segment_one(p, out, model, config, show, quiet)
        tiles.close()
        return
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError as exc:
        raise SemiconvError("--workers needs Dask: pip install 'napari-semiconv[cluster]' (or run without "
                            "--workers)") from exc
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=50) as cluster, Client(cluster) as client:
        shared = client.scatter(model, broadcast=True)
        futures = {client.submit(segment_one, p, out, shared, config, None, True, threads, pure=False): p
                   for p in todo}
        for future in as_completed(futures):
            yield futures[future], future.result()


def segment_one(p: Path, out: Path, model, config, progress=None, quiet: bool = True, threads: int = 0) -> dict:
    """Segment one image file into ``out`` (see :func:`segment_files`); returns its summary row.

    ``threads`` > 0 sets torch's thread count first (a Dask worker's share of the cores).
    """
    import time

    from .data.readers import read_image
    from .measure import measure_worms, write_csv
    from .segment import Progress, Result, segment_iter

    if threads:
        import torch

        torch.set_num_threads(threads)
    t0 = time.perf_counter()
    image = read_image(p)
    planes = planes_of(image, str(p))
    stacked = np.ndim(image) == 3  # a (T/Z, H, W) stack (RGB was refused by planes_of)
    labels, tables = [], []
    for t, plane in enumerate(planes):
        result = None
        for item in segment_iter(model, plane, config):
            if isinstance(item, Result):
                result = item
            elif isinstance(item, Progress) and progress is not None:
                progress(item.stage, item.done, item.total)
        table = measure_worms(result.instances, plane, result.scores)
        if stacked:
            table = {"plane": np.full(len(result.scores), t), **table}
        labels.append(result.labels)
        tables.append(table)
        stack_bytes = len(result.instances) * result.labels.size
        name = f"{p.stem}_t{t:03d}_instances.tif" if stacked else f"{p.stem}_instances.tif"
        if not len(result.instances):  # no worm: no (0, H, W) stack (an empty TIFF); the labels say it
            (out / name).unlink(missing_ok=True)
        elif stack_bytes <= STACK_LIMIT:
            atomic_write(out / name, partial(_write_tif, array=result.instances.to_stack().astype(np.uint8)))
        elif not quiet:
            print(f"{p.name}: the (N, H, W) overlap stack would take {stack_bytes / 1e9:.1f} GB: "
                  "not written (the labels image and CSV are)")
    dtype = np.uint16 if max(int(lab.max(initial=0)) for lab in labels) < 2**16 else np.uint32
    atomic_write(out / f"{p.stem}_labels.tif",
                 partial(_write_tif, array=np.stack(labels).astype(dtype) if stacked else labels[0]))
    table = {k: np.concatenate([tb[k] for tb in tables]) for k in tables[0]}
    atomic_write(out / f"{p.stem}_instances.csv", partial(write_csv, table=table))  # last: marks the image done
    return {"image": str(p), "status": "segmented", "worms": sum(len(tb["label"]) for tb in tables),
            "planes": len(planes), "seconds": round(time.perf_counter() - t0, 3)}


def _csv_rows(path: Path) -> int:
    """Data rows of a CSV file (its worms)."""
    with open(path) as fh:
        return max(sum(1 for _ in fh) - 1, 0)


def _write_summary(path, rows: list[dict]) -> None:
    import csv

    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, ["image", "status", "worms", "planes", "seconds"])
        writer.writeheader()
        writer.writerows(rows)


def evaluate_dirs(pred_dir: Path, gt_dir: Path) -> dict:
    """Metrics of <stem>_instances.tif (scores from the CSV) against ground-truth files.

    A ground-truth file without a prediction counts as all misses and is listed under ``"missing"``.
    """
    from .data.readers import read_image
    from .metrics import as_stack, evaluate, stack_with_scores

    gts = sorted(f for f in gt_dir.iterdir() if f.suffix.lower() in (".tif", ".tiff", ".png")) if gt_dir.is_dir() else []
    if not gts:
        raise SemiconvError(f"the ground-truth folder {gt_dir} holds no .tif/.png files")
    preds, scores, truths, missing = [], [], [], []
    for g in gts:
        stem = g.stem.removesuffix("_labels").removesuffix("_masks")
        cand = [pred_dir / f"{stem}_instances.tif", pred_dir / f"{stem}_labels.tif"]
        found = next((c for c in cand if c.is_file()), None)
        gt = as_stack(read_image(g))
        if found is None:  # scored as all misses, and listed
            missing.append(g.name)
            preds.append(np.zeros((0, *gt.shape[1:]), bool))
            scores.append(np.zeros(0))
            truths.append(gt)
            continue
        pred = read_image(found)
        if pred.ndim == 2 and found.name.endswith("_instances.tif"):
            pred = pred[None]  # a one-worm stack
        n = len(pred) if pred.ndim == 3 else len(np.setdiff1d(np.unique(pred), [0]))
        csv = pred_dir / f"{stem}_instances.csv"
        score = np.ones(n)
        if csv.is_file() and found.name.endswith("_instances.tif"):
            score = np.loadtxt(csv, delimiter=",", skiprows=1, usecols=1, ndmin=1) if n else np.zeros(0)
            if len(score) != n:
                raise SemiconvError(f"{csv.name} lists {len(score)} worms but {found.name} holds {n}: "
                                    "re-run segment to write both again")
        pred, score = stack_with_scores(pred, score)
        if gt.shape[1:] != pred.shape[1:] and len(gt) and len(pred):
            raise SemiconvError(f"{g.name}: ground truth {gt.shape[1:]} and prediction {pred.shape[1:]} differ in shape")
        preds.append(pred)
        scores.append(score)
        truths.append(gt)
    if len(missing) == len(gts):
        raise SemiconvError(f"no prediction in {pred_dir} for any of the {len(gts)} ground-truth files "
                            f"(expected e.g. {gts[0].stem}_instances.tif): segment them into that folder first")
    return {**evaluate(preds, scores, truths), "missing": missing}


