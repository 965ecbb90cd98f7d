"""Throughput of `segment` over a folder: in one process, and on a Dask LocalCluster of workers.

    python benchmarks/throughput.py [--images 40] [--model M.pt]

Writes ``--images`` held-out synthetic 696 x 520 fields (half brightfield, half fluorescence; seeds
TEST_SEED0 + 60000 + i) to a temporary folder and segments them with `segment_files` three ways on
the same images: 1 worker x 1 torch thread, 2 workers x 1 thread, 1 worker x 2 threads, each on a
Dask LocalCluster of that many worker processes, reached by its address as `segment --scheduler` does.
Two times per setting: the cluster's start (once per screen, however many images follow) and the run
over the images (the model's transfer to the workers included), whose images/s is the throughput;
end to end is their sum. Writes a section of docs/benchmarks.md.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import tifffile
import torch
from dask.distributed import LocalCluster
from report import REPORT, cpu_name, model_name, portable, replace_section

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
            with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                              silence_logs=50) as cluster:
                start = time.perf_counter() - t0
                t1 = time.perf_counter()
                counts = segment_files([folder], Path(tmp) / f"out_{workers}x{threads}", model, config, quiet=True,
                                       threads=threads, scheduler=cluster.scheduler_address)
                seconds = time.perf_counter() - t1
            rows.append((workers, threads, start, seconds, args.images / seconds, sum(counts)))
            print(f"{workers} x {threads}: start {start:.1f} s, {seconds:.1f} s, {args.images / seconds:.2f} images/s",
                  flush=True)
    base = rows[0][4]
    lines = [HEADING, "",
             (f"{args.images} held-out 696 x 520 fields (half brightfield, half fluorescence), model "
             f"{model_name(model)}, on a Dask LocalCluster of that many worker processes reached by its address "
             "(as `segment --scheduler` does): its start (once per screen) apart from the run over the images "
             f"(the model's transfer included); {cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}."),
             f"Command: `{portable('python ' + ' '.join(sys.argv))}`", "",
             "| workers x threads | cluster start, s | run, s | images/s | vs 1 x 1 | end to end, s | worms found |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {w} x {t} | {a:.1f} | {s:.1f} | {r:.2f} | {r / base:.2f}x | {a + s:.1f} | {n} |"
              for w, t, a, s, r, n in rows]
    replace_section(Path(args.report), HEADING, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
