"""Batch segmentation of folders: re-runs skip finished images, a summary per run, a Dask cluster of
workers, and a run killed half-way that a re-run completes without redoing anything."""

import csv
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tifffile

from napari_semiconv.batch import SUMMARY, segment_files
from napari_semiconv.data.sources import TEST_SEED0
from napari_semiconv.data.synthetic import SceneConfig, make_scene
from napari_semiconv.registry import resolve_model
from napari_semiconv.segment import SegmentConfig, segment


def _images(folder, n, size=(256, 320)):
    folder.mkdir(parents=True, exist_ok=True)
    images = []
    for i in range(n):
        image = make_scene(TEST_SEED0 + 300 + i, SceneConfig(style="brightfield", worms=(14, 14)),
                           window=(0, 0, *size)).image
        tifffile.imwrite(folder / f"field_{i:02d}.tif", image)
        images.append(image)
    return images


def _summary(out):
    with open(out / SUMMARY) as fh:
        return list(csv.DictReader(fh))


def test_rerun_skips_finished_images_and_redoes_an_interrupted_one(tmp_path):
    _images(tmp_path / "in", 3)
    model, config = resolve_model(None, "cpu"), SegmentConfig(keep_embedding=False)
    out = tmp_path / "out"
    counts = segment_files([tmp_path / "in"], out, model, config, quiet=True)
    assert [r["status"] for r in _summary(out)] == ["segmented"] * 3
    assert [int(r["worms"]) for r in _summary(out)] == counts
    (out / "field_01_instances.csv").unlink()  # as if the run had stopped while writing image 1
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("field_0[02]_*")}
    assert segment_files([tmp_path / "in"], out, model, config, quiet=True) == counts
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("field_0[02]_*")} == before  # not redone
    assert [r["status"] for r in _summary(out)] == ["done before", "segmented", "done before"]
    segment_files([tmp_path / "in"], out, model, config, quiet=True, redo=True)
    assert [r["status"] for r in _summary(out)] == ["segmented"] * 3


def test_a_dask_run_killed_half_way_is_completed_by_a_rerun_that_redoes_nothing(tmp_path):
    pytest.importorskip("distributed")
    n = 12
    images = _images(tmp_path / "in", n, size=(520, 696))
    out = tmp_path / "out"
    command = [sys.executable, "-m", "napari_semiconv.cli", "segment", str(tmp_path / "in"), "--out", str(out),
               "--workers", "2", "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.Popen(command, start_new_session=True, env=env)
    deadline = time.time() + 240
    while not list(out.glob("*_instances.csv")) and time.time() < deadline and run.poll() is None:
        time.sleep(0.02)
    os.killpg(run.pid, signal.SIGKILL)  # the driver and its cluster's workers
    run.wait()
    first = {p.name: p.stat().st_mtime_ns for p in out.glob("*_instances.csv")}
    assert 1 <= len(first) < n  # killed half-way
    assert not (out / SUMMARY).exists()
    subprocess.run(command, check=True, env=env, timeout=300)
    rows = _summary(out)
    assert len(rows) == n and len(list(out.glob("*_labels.tif"))) == n
    assert sum(r["status"] == "done before" for r in rows) == len(first)  # none done twice
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*_instances.csv") if p.name in first} == first
    import torch

    torch.set_num_threads(1)  # as in a worker
    model = resolve_model(None, "cpu")
    for i in (0, n - 1):  # results as segmented here
        labels = tifffile.imread(out / f"field_{i:02d}_labels.tif")
        assert np.array_equal(labels, segment(model, images[i], SegmentConfig(keep_embedding=False)).labels)


def test_scheduler_runs_the_images_on_an_existing_cluster(tmp_path):
    distributed = pytest.importorskip("distributed")
    from napari_semiconv.cli import main

    images = _images(tmp_path / "in", 2, size=(128, 160))
    out = tmp_path / "out"
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        assert main(["segment", str(tmp_path / "in"), "--out", str(out), "--scheduler", cluster.scheduler_address,
                     "--quiet"]) == 0
    assert [r["status"] for r in _summary(out)] == ["segmented"] * 2
    model = resolve_model(None, "cpu")
    for i, image in enumerate(images):
        labels = tifffile.imread(out / f"field_{i:02d}_labels.tif")
        assert np.array_equal(labels, segment(model, image, SegmentConfig(keep_embedding=False)).labels)


def test_an_unreachable_scheduler_is_one_clear_error(tmp_path, capsys):
    pytest.importorskip("distributed")
    from napari_semiconv.cli import main

    _images(tmp_path / "in", 1, size=(64, 64))
    code = main(["segment", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--scheduler",
                 "tcp://127.0.0.1:9", "--quiet"])
    assert code != 0 and "cannot reach the Dask scheduler" in capsys.readouterr().err
