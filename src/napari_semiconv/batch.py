"""Folders of images in, result files out: segment files and score a folder of results (no Qt, no CLI).

``segment_files`` writes per image ``<stem>_labels.tif`` (uint16), ``<stem>_instances.tif`` (uint8
(N, H, W) overlap stack) and ``<stem>_instances.csv``, each atomically; ``evaluate_dirs`` scores such
a folder against ground-truth files.
"""

from functools import partial
from pathlib import Path

import numpy as np

from .atomic import atomic_write
from .errors import SemiconvError

STACK_LIMIT = 2**30  # bytes of the largest (N, H, W) instance stack the CLI writes


def _write_tif(path, array: np.ndarray) -> None:
    import tifffile

    tifffile.imwrite(path, array, compression="zlib")


def segment_files(paths, out: Path, model, config, quiet: bool = False) -> list[int]:
    """Segment image files into ``out``: <stem>_labels.tif, _instances.tif, _instances.csv.

    _instances.tif is the (N, H, W) uint8 stack that keeps overlaps; for mosaics where it would
    exceed STACK_LIMIT bytes it is left out (said on the console), labels and CSV are written.
    All inputs are read and checked first; each output file is written atomically.
    Returns the number of worms per image.
    """
    from tqdm import tqdm

    from .data.readers import read_image
    from .measure import measure_worms, write_csv
    from .normalize import check_image
    from .segment import segment

    for p in paths:  # check everything before writing anything
        check_image(read_image(p), name=str(p))
    out.mkdir(parents=True, exist_ok=True)
    counts = []
    for p in tqdm(paths, desc="segment", unit="image", disable=quiet):
        image = read_image(p)
        result = segment(model, image, config)
        table = measure_worms(result.instances, image, result.scores)
        atomic_write(out / f"{p.stem}_labels.tif", partial(_write_tif, array=result.labels))
        stack_bytes = len(result.instances) * result.labels.size
        if stack_bytes <= STACK_LIMIT:
            atomic_write(out / f"{p.stem}_instances.tif",
                          partial(_write_tif, array=result.instances.to_stack().astype(np.uint8)))
        elif not quiet:
            tqdm.write(f"{p.name}: the (N, H, W) overlap stack would take {stack_bytes / 1e9:.1f} GB: "
                       "not written (the labels image and CSV are)")
        atomic_write(out / f"{p.stem}_instances.csv", partial(write_csv, table=table))
        counts.append(len(result.scores))
        if not quiet:
            tqdm.write(f"{p.name}: {len(result.scores)} worms")
    return counts


def evaluate_dirs(pred_dir: Path, gt_dir: Path) -> dict:
    """Metrics of <stem>_instances.tif (scores from the CSV) against ground-truth files.

    A ground-truth file without a prediction counts as all misses and is listed under ``"missing"``.
    """
    from .data.readers import read_image
    from .metrics import as_stack, evaluate, stack_with_scores

    gts = sorted(f for f in gt_dir.iterdir() if f.suffix.lower() in (".tif", ".tiff", ".png")) if gt_dir.is_dir() else []
    if not gts:
        raise SemiconvError(f"--gt {gt_dir} holds no .tif/.png ground-truth files")
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


