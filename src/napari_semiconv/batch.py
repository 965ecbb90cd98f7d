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


def segment_files(paths, out: Path, model, config, quiet: bool = False,
                  progress: Callable[[str, int, int], None] | None = None) -> list[int]:
    """Segment image files (or the images in folders) into ``out``: <stem>_labels.tif, _instances.tif, _instances.csv.

    A 2-D image gives a ``(H, W)`` uint16 labels image and the ``(N, H, W)`` uint8 stack that keeps
    overlaps (left out, said on the console, where it would exceed STACK_LIMIT bytes); a ``(T/Z, H,
    W)`` stack is segmented plane by plane into ``(T, H, W)`` labels, one instance stack per plane
    (``<stem>_t003_instances.tif``) and one CSV with a ``plane`` column. All inputs are read and
    checked first; files this function wrote earlier (``*_labels``, ``*_instances``) are not inputs;
    each output file is written atomically. ``progress(stage, done, total)`` is called per tile.
    Returns the number of worms per image (summed over planes).
    """
    from tqdm import tqdm

    from .data.readers import read_image
    from .measure import measure_worms, write_csv
    from .normalize import check_binary
    from .segment import Progress, Result, segment_iter

    paths = _inputs(paths)
    for p in paths:  # check everything before writing anything
        for plane in planes_of(read_image(p), str(p)):
            if config.binary:
                check_binary(plane, name=str(p))
    check_writable(out, folder=True)
    counts = []
    tiles = tqdm(desc="tiles", unit="tile", leave=False, disable=quiet)

    def show(stage, done, total):  # big planes advance tile by tile
        if stage in ("network", "tiles"):
            tiles.total, tiles.n = total, done
            tiles.refresh()
        if progress is not None:
            progress(stage, done, total)

    for p in tqdm(paths, desc="segment", unit="image", disable=quiet):
        image = read_image(p)
        planes = planes_of(image, str(p))
        stacked = np.ndim(image) == 3  # a (T/Z, H, W) stack (RGB was refused by planes_of)
        labels, tables = [], []
        for t, plane in enumerate(planes):
            result = None
            for item in segment_iter(model, plane, config):
                if isinstance(item, Result):
                    result = item
                elif isinstance(item, Progress):
                    show(item.stage, item.done, item.total)
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
                tqdm.write(f"{p.name}: the (N, H, W) overlap stack would take {stack_bytes / 1e9:.1f} GB: "
                           "not written (the labels image and CSV are)")
        dtype = np.uint16 if max(int(lab.max(initial=0)) for lab in labels) < 2**16 else np.uint32
        atomic_write(out / f"{p.stem}_labels.tif",
                     partial(_write_tif, array=np.stack(labels).astype(dtype) if stacked else labels[0]))
        table = {k: np.concatenate([tb[k] for tb in tables]) for k in tables[0]}
        atomic_write(out / f"{p.stem}_instances.csv", partial(write_csv, table=table))
        counts.append(sum(len(tb["label"]) for tb in tables))
        if not quiet:
            tqdm.write(f"{p.name}: {counts[-1]} worms" + (f" in {len(planes)} planes" if stacked else ""))
    tiles.close()
    return counts


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


