"""Folders of images in, result files out: segment files and score a folder of results (no Qt, no CLI).

``segment_files`` writes per image ``<stem>_labels.tif`` (uint16), ``<stem>_instances.tif`` (uint8
(N, H, W) overlap stack) and ``<stem>_instances.csv``, each atomically; ``evaluate_dirs`` scores such
a folder against ground-truth files. Images are read plane by plane (TIFF stacks memory-mapped or through
zarr, OME-Zarr folders), and planes larger than one segmentation tile are streamed: read, segmented and
written tile by tile, so memory stays near that of one tile whatever the plane's size.
"""

from collections.abc import Callable
from contextlib import ExitStack
from functools import partial
from pathlib import Path

import numpy as np

from .atomic import atomic_write, check_writable
from .errors import SemiconvError

STACK_LIMIT = 2**30  # bytes of the largest (N, H, W) instance stack the CLI writes
WRITE_TILE = 512  # px: streamed planes are written as tiled TIFFs of this tile size


def _write_pages(path, region: Callable[[int, slice, slice], np.ndarray], pages: int, shape: tuple[int, int],
                 dtype, tiled: bool, stacked: bool) -> None:
    """Write ``pages`` ``(H, W)`` planes of ``dtype`` as one TIFF ((pages, H, W) if ``stacked``, else one
    (H, W) page); ``region(page, rows, cols)`` gives a part of a page. ``tiled``: tile by tile (WRITE_TILE
    px), one tile in memory at a time; else whole pages."""
    import tifffile

    everything = slice(None)
    if not tiled:
        array = np.stack([region(i, everything, everything).astype(dtype) for i in range(pages)])
        tifffile.imwrite(path, array if stacked else array[0], compression="zlib")
        return
    h, w = shape
    tiles = (region(i, slice(r, r + WRITE_TILE), slice(c, c + WRITE_TILE)).astype(dtype)
             for i in range(pages) for r in range(0, h, WRITE_TILE) for c in range(0, w, WRITE_TILE))
    tifffile.imwrite(path, tiles, shape=(pages, h, w) if stacked else (h, w), dtype=dtype,
                     tile=(WRITE_TILE, WRITE_TILE), compression="zlib")


OUTPUT_SUFFIXES = ("_labels", "_instances")  # file stems this module writes (never taken as inputs)


def planes_of(image, name: str) -> list[tuple[str, object]]:
    """An ``(H, W)`` plane or a ``(T/Z, H, W)`` stack (an array or a lazy one, see
    :func:`~napari_semiconv.data.readers.open_image`) -> (name, ``(H, W)`` plane) pairs, the planes still
    unread and unchecked (:func:`~napari_semiconv.planes.check_plane`); RGB(A) and other shapes refused."""
    from .normalize import check_image

    if image.ndim == 3 and image.shape[-1] not in (3, 4):
        return [(f"{name} plane {t}", image[t]) for t in range(image.shape[0])]
    if image.ndim != 2:
        check_image(np.asarray(image), name=name)  # says what is wrong (RGB(A), 4-D, ...)
    return [(name, image)]


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
                  threads: int = 1, redo: bool = False, scheduler: str | None = None) -> list[int]:
    """Segment image files (or the images in folders) into ``out``: <stem>_labels.tif, _instances.tif, _instances.csv.

    A 2-D image gives a ``(H, W)`` uint16 labels image and the ``(N, H, W)`` uint8 stack that keeps
    overlaps (left out, said on the console, where it would exceed STACK_LIMIT bytes); a ``(T/Z, H,
    W)`` stack is segmented plane by plane into ``(T, H, W)`` labels, one instance stack per plane
    (``<stem>_t003_instances.tif``) and one CSV with a ``plane`` column. All inputs are read and
    checked first; files this function wrote earlier (``*_labels``, ``*_instances``) are not inputs;
    each output file is written atomically, the CSV last, so an interrupted run leaves every image
    either done or not started: a re-run skips the images already done (``redo`` = segment them again).
    ``workers`` > 0 spreads the images over that many worker processes of a Dask LocalCluster (the
    model sent once to each), each with ``threads`` torch threads; ``scheduler`` (an address such as
    ``tcp://host:8786``) runs them on that existing dask.distributed cluster instead, by the same code
    (its workers need this package). Planes larger than ``config.tile`` are streamed (see
    :func:`segment_one`). ``progress(stage, done, total)`` is
    called per tile (in this process only). Writes ``segment_summary.csv`` (image, status, worms,
    planes, seconds) and returns the number of worms per image (summed over planes), in input order.
    """
    from tqdm import tqdm

    from .data.readers import open_image
    from .planes import check_plane

    if workers < 0 or threads < 1:
        raise SemiconvError(f"{workers} workers with {threads} threads each: give 0 or more workers (0 = no "
                            "cluster) and at least 1 thread")
    paths = _inputs(paths)
    for p in paths:  # check everything before writing anything (plane by plane, band by band)
        for name, plane in planes_of(open_image(p), str(p)):
            check_plane(plane, name, config.binary)
    check_writable(out, folder=True)
    todo = [p for p in paths if redo or not _done(p, out)]
    rows = {p: {"image": str(p), "status": "done before", "worms": _csv_rows(out / f"{p.stem}_instances.csv"),
                "planes": "", "seconds": ""} for p in paths if p not in todo}
    if rows and not quiet:
        tqdm.write(f"{len(rows)} of {len(paths)} images already segmented in {out}: skipped (--redo to redo them)")
    bar = tqdm(total=len(todo), desc="segment", unit="image", disable=quiet)
    for p, row in _run(todo, out, model, config, workers, threads, progress, quiet, scheduler):
        rows[p] = row
        bar.update()
        if not quiet:
            tqdm.write(f"{p.name}: {row['worms']} worms" + (f" in {row['planes']} planes" if row["planes"] > 1 else ""))
    bar.close()
    summary = [rows[p] for p in paths]
    atomic_write(out / SUMMARY, partial(_write_summary, rows=summary))
    return [int(r["worms"]) for r in summary]


def _run(todo, out, model, config, workers, threads, progress, quiet, scheduler=None):
    """Yield (path, summary row) per image as each finishes: here, or on the Dask cluster at ``scheduler``,
    or on a Dask LocalCluster of ``workers``."""
    if workers <= 0 and not scheduler:
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
        raise SemiconvError("--workers and --scheduler need Dask: pip install 'napari-semiconv[cluster]' (or run "
                            "without them)") from exc
    with ExitStack() as stack:
        if scheduler:
            try:
                client = stack.enter_context(Client(scheduler, timeout="10s"))
            except (OSError, TimeoutError) as exc:
                raise SemiconvError(f"cannot reach the Dask scheduler at {scheduler} ({exc}): start it, or check "
                                    "the address (e.g. tcp://host:8786)") from None
        else:
            cluster = stack.enter_context(LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                                       dashboard_address=None, silence_logs=50))
            client = stack.enter_context(Client(cluster))
        shared = client.scatter(model, broadcast=True)
        futures = {client.submit(segment_one, p, out, shared, config, None, True, threads, pure=False): p
                   for p in todo}
        for future in as_completed(futures):
            yield futures[future], future.result()


def segment_one(p: Path, out: Path, model, config, progress=None, quiet: bool = True, threads: int = 0) -> dict:
    """Segment one image file into ``out`` (see :func:`segment_files`); returns its summary row.

    The image is read plane by plane. A plane up to ``config.tile`` px (at the size the model segments it:
    :func:`~napari_semiconv.segment.streams`) is segmented in memory
    (:func:`~napari_semiconv.segment.segment_iter`); a larger one (a SemiConvNet's) is streamed
    (:func:`~napari_semiconv.segment.segment_stream`): read tile by tile, only its worms kept (in their
    bounding boxes), its labels and instance stack written as tiled TIFFs tile by tile. ``threads`` > 0
    sets torch's thread count first (a Dask worker's share of the cores).
    """
    import time

    from .data.readers import open_image
    from .measure import measure_worms, write_csv
    from .segment import Progress, segment_iter, segment_stream, streams

    if threads:
        import torch

        torch.set_num_threads(threads)
    t0 = time.perf_counter()
    image = open_image(p)
    planes = planes_of(image, str(p))
    stacked = image.ndim == 3  # a (T/Z, H, W) stack (RGB was refused by planes_of)
    shape = tuple(image.shape[-2:])
    stream = streams(model, shape, config)
    labels, tables = [], []
    for t, (_, plane) in enumerate(planes):
        pixels = plane if stream else np.asarray(plane)  # streamed: read tile by tile
        for item in (segment_stream(model, pixels, config) if stream else segment_iter(model, pixels, config)):
            if isinstance(item, Progress):
                if progress is not None:
                    progress(item.stage, item.done, item.total)
            else:
                result = item  # the last item: a Result (in memory) or Worms (streamed)
        table = measure_worms(result.instances, pixels, result.scores)
        if stacked:
            table = {"plane": np.full(len(result.scores), t), **table}
        # (rows, cols) -> that part of the plane's label image
        labels.append(result.labels if stream else partial(_region, result.labels))
        tables.append(table)
        _write_stack(out, f"{p.stem}_t{t:03d}_instances.tif" if stacked else f"{p.stem}_instances.tif",
                     result.instances, stream, p.name, quiet)
    dtype = np.uint16 if max(len(tb["label"]) for tb in tables) < 2**16 else np.uint32
    atomic_write(out / f"{p.stem}_labels.tif", partial(_write_pages, region=lambda i, rows, cols: labels[i](rows, cols),
                                                      pages=len(labels), shape=shape, dtype=dtype, tiled=stream,
                                                      stacked=stacked))
    table = {k: np.concatenate([tb[k] for tb in tables]) for k in tables[0]}
    atomic_write(out / f"{p.stem}_instances.csv", partial(write_csv, table=table))  # last: marks the image done
    return {"image": str(p), "status": "segmented", "worms": sum(len(tb["label"]) for tb in tables),
            "planes": len(planes), "seconds": round(time.perf_counter() - t0, 3)}


def _region(array: np.ndarray, rows: slice, cols: slice) -> np.ndarray:
    return array[rows, cols]


def _write_stack(out: Path, name: str, instances, tiled: bool, image: str, quiet: bool) -> None:
    """Write the ``(N, H, W)`` uint8 overlap stack of one plane's Instances (tile by tile if ``tiled``); none
    for no worm (the labels say it), nor where it would exceed STACK_LIMIT bytes (said unless ``quiet``)."""
    stack_bytes = len(instances) * instances.shape[0] * instances.shape[1]
    if not len(instances):  # no (0, H, W) stack (an empty TIFF)
        (out / name).unlink(missing_ok=True)
    elif stack_bytes <= STACK_LIMIT:
        atomic_write(out / name, partial(_write_pages, region=lambda i, rows, cols: instances.select([i]).paint(rows, cols),
                                         pages=len(instances), shape=instances.shape, dtype=np.uint8, tiled=tiled,
                                         stacked=True))
    elif not quiet:
        print(f"{image}: the (N, H, W) overlap stack would take {stack_bytes / 1e9:.1f} GB: "
              "not written (the labels image and CSV are)")


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


