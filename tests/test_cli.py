import subprocess
import sys

import numpy as np
import pytest
import tifffile

from napari_semiconv.cli import main
from napari_semiconv.data.sources import TEST_SEED0
from napari_semiconv.data.synthetic import SceneConfig, make_scene


@pytest.fixture(scope="module")
def scene_file(tmp_path_factory):
    d = tmp_path_factory.mktemp("inputs")
    scene = make_scene(TEST_SEED0 + 77, SceneConfig(style="brightfield", worms=(12, 12)))
    tifffile.imwrite(d / "field.tif", scene.image)
    tifffile.imwrite(d / "field_gt.tif", scene.instances.astype(np.uint8))
    return d / "field.tif", scene


def test_segment_writes_three_files(scene_file, tmp_path, capsys):
    path, scene = scene_file
    assert scene.image.shape == (520, 696)
    assert main(["segment", str(path), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    labels = tifffile.imread(tmp_path / "out" / "field_labels.tif")
    stack = tifffile.imread(tmp_path / "out" / "field_instances.tif")
    csv = (tmp_path / "out" / "field_instances.csv").read_text().splitlines()
    assert labels.dtype == np.uint16 and labels.shape == (520, 696)
    assert stack.dtype == np.uint8 and stack.ndim == 3 and stack.shape[1:] == (520, 696)
    assert len(csv) == len(stack) + 1 and csv[0].startswith("label,score,area,bbox_min_row")
    assert labels.max() == len(stack) and len(stack) >= 5
    scores = np.array([float(row.split(",")[1]) for row in csv[1:]])
    ranked = np.sort(scores)
    gap = int(np.argmax(np.diff(ranked)))
    cut = float(ranked[gap:gap + 2].mean())  # in the widest gap between the worms' (rounded) scores
    assert main(["segment", str(path), "--out", str(tmp_path / "cut"), "--quiet", "--min-score", str(cut)]) == 0
    kept = tifffile.imread(tmp_path / "cut" / "field_instances.tif")
    assert len(kept) == (scores >= cut).sum() < len(stack)


def test_evaluate_command(scene_file, tmp_path, capsys):
    path, scene = scene_file
    gt = tmp_path / "gt"
    gt.mkdir()
    tifffile.imwrite(gt / "field.tif", scene.instances.astype(np.uint8))
    main(["segment", str(path), "--out", str(tmp_path / "pred"), "--quiet"])
    capsys.readouterr()
    assert main(["evaluate", "--pred", str(tmp_path / "pred"), "--gt", str(gt), "--json", str(tmp_path / "m.json")]) == 0
    import json

    m = json.loads((tmp_path / "m.json").read_text())
    assert set(m) >= {"S@0.5", "avS", "AP", "AP50", "AP75"} and 0 <= m["avS"] <= 1


def _bad_inputs(tmp_path):
    rgb = tmp_path / "rgb.tif"
    tifffile.imwrite(rgb, np.zeros((64, 64, 3), np.uint8))
    vol = tmp_path / "vol.tif"
    tifffile.imwrite(vol, np.zeros((2, 3, 64, 64), np.uint16))  # 4-D
    bad_plane = tmp_path / "bad_plane.tif"
    planes = np.ones((3, 64, 64), np.float32)
    planes[1, 5, 5] = np.nan
    tifffile.imwrite(bad_plane, planes)
    nan = tmp_path / "nan.tif"
    arr = np.ones((64, 64), np.float32)
    arr[3, 3] = np.nan
    tifffile.imwrite(nan, arr)
    empty = tmp_path / "empty.tif"
    tifffile.imwrite(empty, np.zeros((0, 0), np.uint8))
    broken = tmp_path / "broken.tif"
    broken.write_bytes(b"II*\x00garbage")
    return {"RGB": rgb, "expected a 2-D": vol, "plane 1 contains 1 NaN": bad_plane, "NaN": nan, "empty": empty,
            "cannot read": broken}


def test_bad_input_one_line_nonzero_nothing_written(scene_file, tmp_path, capsys):
    good = scene_file[0]
    for expect, bad in _bad_inputs(tmp_path).items():
        out = tmp_path / f"out_{bad.stem}"
        code = main(["segment", str(good), str(bad), "--out", str(out), "--quiet"])
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1, (expect, err)
        assert expect.lower() in err.lower() or bad.name in err
        assert not out.exists()  # the good image before it was not written either


def test_wrong_model_file(scene_file, tmp_path, capsys):
    fake = tmp_path / "weights.pt"
    fake.write_text("hello")
    code = main(["segment", str(scene_file[0]), "--out", str(tmp_path / "o"), "--model", str(fake)])
    assert code == 2 and "not a readable" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_console_script_exit_code(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "napari_semiconv.cli", "segment", str(tmp_path / "nope.tif"),
                           "--out", str(tmp_path / "o")], capture_output=True, text=True, check=False)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "no such file" in proc.stderr


def test_train_bad_inputs(tmp_path, capsys):
    (tmp_path / "empty" / "images").mkdir(parents=True)
    (tmp_path / "empty" / "masks").mkdir()
    orphan = tmp_path / "orphan"
    (orphan / "images").mkdir(parents=True)
    (orphan / "masks").mkdir()
    tifffile.imwrite(orphan / "masks" / "a.tif", np.ones((32, 32), np.uint8))
    mismatch = tmp_path / "mismatch"
    (mismatch / "images").mkdir(parents=True)
    (mismatch / "masks").mkdir()
    tifffile.imwrite(mismatch / "images" / "a.tif", np.ones((32, 32), np.uint8))
    tifffile.imwrite(mismatch / "masks" / "a.tif", np.ones((30, 32), np.uint8))
    cases = {f"folder:{tmp_path / 'empty'}": "holds no images", f"folder:{orphan}": "without an image",
             f"folder:{mismatch}": "does not match", "imagenet": "unknown --data"}
    for data, expect in cases.items():
        out = tmp_path / "model.pt"
        code = main(["train", "--data", data, "--out", str(out), "--steps", "2", "--quiet"])
        err = capsys.readouterr().err.strip()
        assert code == 2 and expect in err and len(err.splitlines()) == 1
        assert not out.exists() and not list(tmp_path.glob("model*"))


def test_evaluate_dirs_pairs_csv_scores_with_masks(tmp_path):
    from napari_semiconv.batch import evaluate_dirs

    pred, gt = tmp_path / "pred", tmp_path / "gt"
    pred.mkdir()
    gt.mkdir()
    truth = np.zeros((1, 40, 40), np.uint8)
    truth[0, :10, :10] = 1
    stack = np.zeros((3, 40, 40), np.uint8)  # [empty, match, false positive]
    stack[1, :10, :10] = 1
    stack[2, 25:35, 25:35] = 1
    tifffile.imwrite(gt / "a.tif", truth)
    tifffile.imwrite(pred / "a_instances.tif", stack)
    (pred / "a_instances.csv").write_text("label,score\n1,0.9\n2,0.1\n3,0.8\n")
    m = evaluate_dirs(pred, gt)
    assert m["AP50"] == pytest.approx(0.5, abs=0.01)  # the false positive (0.8) outranks the match (0.1)
    assert m["S@0.5"] == pytest.approx(0.5)  # 1 TP, 1 FP, 0 FN
    (pred / "a_instances.csv").write_text("label,score\n1,0.9\n2,0.1\n")
    with pytest.raises(Exception, match="lists 2 worms but a_instances.tif holds 3"):
        evaluate_dirs(pred, gt)


def test_evaluate_scores_what_it_can_and_lists_missing_predictions(tmp_path, capsys):
    pred, gt = tmp_path / "pred", tmp_path / "gt"
    pred.mkdir()
    gt.mkdir()
    truth = np.zeros((1, 40, 40), np.uint8)
    truth[0, :10, :10] = 1
    for name in ("a", "b"):
        tifffile.imwrite(gt / f"{name}.tif", truth)
    tifffile.imwrite(pred / "a_instances.tif", truth)  # a is perfect, b has no prediction
    assert main(["evaluate", "--pred", str(pred), "--gt", str(gt), "--json", str(tmp_path / "m.json")]) == 0
    import json

    m = json.loads((tmp_path / "m.json").read_text())
    assert m["S@0.5"] == pytest.approx(0.5) and m["missing"] == ["b.tif"]
    assert "b.tif" in capsys.readouterr().err


def test_help_shows_every_option_with_text_and_default(capsys):
    from napari_semiconv.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices
    for name, p in sub.items():
        for action in p._actions:
            if action.dest != "help":
                assert action.help, f"{name} {action.option_strings or action.dest} has no help text"
    with pytest.raises(SystemExit):
        main(["segment", "--help"])
    text = capsys.readouterr().out
    assert "(default: 60)" in text and "(default: seeded)" in text


def test_version_models_and_unknown_model_name(tmp_path, capsys):
    from napari_semiconv import __version__

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and __version__ in capsys.readouterr().out
    assert main(["models"]) == 0 and "no fine-tuned models yet" in capsys.readouterr().out
    tifffile.imwrite(tmp_path / "a.tif", np.zeros((64, 64), np.uint8))
    assert main(["segment", str(tmp_path / "a.tif"), "--model", "my-worms", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "'my-worms' is neither a file nor a name in the model registry" in err and "no models yet" in err


def test_segment_a_stack_plane_by_plane_with_progress(tmp_path, capsys):
    from napari_semiconv.batch import segment_files
    from napari_semiconv.registry import resolve_model
    from napari_semiconv.segment import SegmentConfig

    scenes = [make_scene(TEST_SEED0 + 80 + i, SceneConfig(style="brightfield", worms=(12, 12)), window=(0, 0, 256, 320))
              for i in range(2)]
    tifffile.imwrite(tmp_path / "movie.tif", np.stack([s.image.astype(np.float32) for s in scenes]))
    calls = []
    counts = segment_files([tmp_path / "movie.tif"], tmp_path / "out", resolve_model(None, "cpu"),
                           SegmentConfig(keep_embedding=False), quiet=True,
                           progress=lambda stage, done, total: calls.append((stage, done, total)))
    labels = tifffile.imread(tmp_path / "out" / "movie_labels.tif")
    assert labels.shape == (2, 256, 320) and labels.dtype == np.uint16
    csv = (tmp_path / "out" / "movie_instances.csv").read_text().splitlines()
    assert csv[0].startswith("plane,label,score") and len(csv) == 1 + counts[0]
    planes = [int(line.split(",")[0]) for line in csv[1:]]
    assert planes.count(0) == labels[0].max() and planes.count(1) == labels[1].max()
    for t in range(2):
        assert tifffile.imread(tmp_path / "out" / f"movie_t{t:03d}_instances.tif").shape[0] == labels[t].max()
    assert [c for c in calls if c[0] == "network"] == [("network", 1, 1)] * 2  # one tile per plane
    # the folder as input again: its own outputs are not taken as inputs
    assert segment_files([tmp_path / "out", tmp_path / "movie.tif"], tmp_path / "out", resolve_model(None, "cpu"),
                         SegmentConfig(keep_embedding=False), quiet=True) == counts


def test_same_stem_refused_before_anything_is_written(tmp_path, capsys):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for d in ("a", "b"):
        tifffile.imwrite(tmp_path / d / "img.tif", np.zeros((64, 64), np.uint8))
    code = main(["segment", str(tmp_path / "a" / "img.tif"), str(tmp_path / "b" / "img.tif"), "--out", str(tmp_path / "o")])
    assert code == 2 and "same name 'img'" in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_tiled_segment_reports_progress_per_tile(tmp_path):
    from napari_semiconv.batch import segment_files
    from napari_semiconv.registry import resolve_model
    from napari_semiconv.segment import SegmentConfig, _tiles

    image = make_scene(TEST_SEED0 + 85, SceneConfig(style="brightfield"), window=(0, 0, 256, 320)).image
    tifffile.imwrite(tmp_path / "a.tif", image)
    config = SegmentConfig(tile=160, tile_overlap=40, keep_embedding=False)
    calls = []
    segment_files([tmp_path / "a.tif"], tmp_path / "out", resolve_model(None, "cpu"), config, quiet=True,
                  progress=lambda *c: calls.append(c))
    n = len(_tiles(256, 320, config))
    assert n > 1 and [c for c in calls if c[0] == "tiles"] == [("tiles", i + 1, n) for i in range(n)]


def test_impossible_runs_are_refused_before_any_work(tmp_path, capsys):
    tifffile.imwrite(tmp_path / "a.tif", np.zeros((64, 64), np.uint8))
    tifffile.imwrite(tmp_path / "a_labels.tif", np.ones((64, 64), np.uint16))
    assert main(["train", "--out", str(tmp_path / "m.pt"), "--steps", "0"]) == 2
    assert "at least 1 step" in capsys.readouterr().err and not (tmp_path / "m.pt").exists()
    assert main(["finetune", "--images", str(tmp_path / "a.tif"), "--labels", str(tmp_path / "a_labels.tif"),
                 "--steps", "-3", "--out", str(tmp_path / "f.pt")]) == 2
    assert "at least 1 step" in capsys.readouterr().err and not (tmp_path / "f.pt").exists()
    assert main(["finetune", "--images", str(tmp_path / "a.tif"), "--labels", str(tmp_path / "a_labels.tif"),
                 "--hold-back", "1", "--out", str(tmp_path / "f.pt")]) == 2
    assert "held-back share" in capsys.readouterr().err and not (tmp_path / "f.pt").exists()
    assert main(["train", "--out", str(tmp_path / "m.pt"), "--steps", "2", "--resume"]) == 2
    assert "nothing to resume" in capsys.readouterr().err and not (tmp_path / "m.pt").exists()


def test_binary_flag_on_a_grey_image_and_an_image_without_worms(tmp_path, capsys):
    grey = make_scene(TEST_SEED0 + 86, SceneConfig(style="brightfield"), window=(0, 0, 128, 128)).image
    tifffile.imwrite(tmp_path / "grey.tif", grey)
    assert main(["segment", str(tmp_path / "grey.tif"), "--binary", "--out", str(tmp_path / "o1")]) == 2
    assert "binary foreground mask was expected" in capsys.readouterr().err and not (tmp_path / "o1").exists()
    tifffile.imwrite(tmp_path / "blank.tif", np.full((96, 96), 100, np.uint16))
    with __import__("warnings").catch_warnings():
        __import__("warnings").simplefilter("error")  # no tifffile warning about a zero-size TIFF
        assert main(["segment", str(tmp_path / "blank.tif"), "--out", str(tmp_path / "o2"), "--quiet"]) == 0
    assert tifffile.imread(tmp_path / "o2" / "blank_labels.tif").max() == 0
    assert not (tmp_path / "o2" / "blank_instances.tif").exists()
    assert (tmp_path / "o2" / "blank_instances.csv").read_text().count("\n") == 1  # the header only


def test_unwritable_output_is_said_before_any_work(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    tifffile.imwrite(tmp_path / "a.tif", np.zeros((64, 64), np.uint8))
    tifffile.imwrite(tmp_path / "a_labels.tif", np.ones((64, 64), np.uint16))
    for argv in (["segment", str(tmp_path / "a.tif"), "--out", str(blocker / "out")],
                 ["train", "--out", str(blocker / "m.pt"), "--steps", "1"],
                 ["finetune", "--images", str(tmp_path / "a.tif"), "--labels", str(tmp_path / "a_labels.tif"),
                  "--out", str(blocker / "f.pt")]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"cannot write {blocker}" in err, err


def test_view_says_which_file_is_missing_before_opening_napari(tmp_path, capsys):
    tifffile.imwrite(tmp_path / "a.tif", np.zeros((32, 32), np.uint8))
    assert main(["view", str(tmp_path / "a.tif"), str(tmp_path / "a_labels.tif")]) == 2
    assert "a_labels.tif" in capsys.readouterr().err
