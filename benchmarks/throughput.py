"""Throughput of `segment` over a folder: in one process, and on a Dask LocalCluster of workers.

    python benchmarks/throughput.py [--images 40] [--model M.pt]

Writes ``--images`` held-out synthetic 696 x 520 fields (half brightfield, half fluorescence; seeds
TEST_SEED0 + 60000 + i) to a temporary folder and segments them with `segment_files` three ways on
the same images: 1 worker x 1 torch thread, 2 workers x 1 thread (Dask LocalCluster), 1 worker x 2
threads (each "worker" setting with a cluster of that many worker processes). The time is end to end,
as a user waits for it (cluster start and model transfer included). Writes a section of docs/benchmarks.md.
"""

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import tifffile
import torch
from report import REPORT, model_name, portable, replace_section

from napari_semiconv.batch import segment_files
from napari_semiconv.data.sources import TEST_SEED0
from napari_semiconv.data.synthetic import SceneConfig, make_scene
from napari_semiconv.registry import resolve_model
from napari_semiconv.segment import SegmentConfig

HEADING = "## Throughput: segment over a folder, workers x threads"
SETTINGS = ((1, 1), (2, 1), (1, 2))  # (workers, threads per worker)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=40)
    ap.add_argument("--model", help="model file or registry name (default: the shipped model)")
    ap.add_argument("--report", default=str(REPORT))
    args = ap.parse_args(argv)
    model = resolve_model(args.model, "cpu")
    config = SegmentConfig(keep_embedding=False)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "in"
        folder.mkdir()
        for i in range(args.images):
            style = ("brightfield", "fluorescence")[i % 2]
            tifffile.imwrite(folder / f"field_{i:03d}.tif", make_scene(TEST_SEED0 + 60000 + i, SceneConfig(style=style)).image)
        for workers, threads in SETTINGS:
            t0 = time.perf_counter()
            counts = segment_files([folder], Path(tmp) / f"out_{workers}x{threads}", model, config, quiet=True,
                                   workers=workers, threads=threads)
            seconds = time.perf_counter() - t0
            rows.append((workers, threads, seconds, args.images / seconds, sum(counts)))
            print(f"{workers} x {threads}: {seconds:.1f} s, {args.images / seconds:.2f} images/s", flush=True)
    base = rows[0][3]
    lines = [HEADING, "",
             (f"{args.images} held-out 696 x 520 fields (half brightfield, half fluorescence), model "
             f"{model_name(model)}, end to end (a Dask LocalCluster's start and the model's transfer included); "
             f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}."),
             f"Command: `{portable('python ' + ' '.join(sys.argv))}`", "",
             "| workers x threads | seconds | images/s | vs 1 x 1 | worms found |", "|---|---|---|---|---|"]
    lines += [f"| {w} x {t} | {s:.1f} | {r:.2f} | {r / base:.2f}x | {n} |" for w, t, s, r, n in rows]
    replace_section(Path(args.report), HEADING, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
