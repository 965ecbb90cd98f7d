import copy
from dataclasses import replace

import numpy as np
import pytest
import torch

from napari_semiconv import SemiconvError
from napari_semiconv.finetune import FinetuneConfig, check_annotations, finetune_iter, finetune_to_file
from napari_semiconv.model import ModelConfig, build_model, load_model, save_model
from napari_semiconv.registry import Registry
from napari_semiconv.train import TrainProgress


def _pair():
    from napari_semiconv.data.synthetic import SceneConfig, make_scene

    s = make_scene(11, SceneConfig(worms=(20, 20)), window=(100, 100, 128, 128))
    return s.image, s.labels


def test_bad_annotations():
    img, lab = _pair()
    with pytest.raises(SemiconvError, match="no worm painted"):
        check_annotations([img], [np.zeros_like(lab)])
    with pytest.raises(SemiconvError, match="shape"):
        check_annotations([img], [lab[:100]])
    with pytest.raises(SemiconvError, match="RGB"):
        check_annotations([np.stack([img] * 3, -1)], [lab])
    region = np.zeros(lab.shape, bool)
    region[lab == 0] = True
    with pytest.raises(SemiconvError, match="inside the region"):
        check_annotations([img], [lab], [region])


def test_finetune_copies_base_and_cancel_yields_nothing(tmp_path):
    img, lab = _pair()
    base = build_model(ModelConfig(width=8, depth=3))
    before = {k: v.clone() for k, v in base.state_dict().items()}
    config = FinetuneConfig(steps=3, crop=96, batch=1, hold_back=0)  # no verdict: the trained weights are returned
    items = list(finetune_iter(base, [img], [lab], config=config))
    assert all(isinstance(i, TrainProgress) for i in items[:-1]) and len(items) == 4
    new = items[-1]
    assert any(not torch.equal(new.state_dict()[k], v) for k, v in before.items())
    assert all(torch.equal(base.state_dict()[k], v) for k, v in before.items())  # base untouched
    calls = iter(range(100))
    stopped = list(finetune_iter(base, [img], [lab], config=config, should_stop=lambda: next(calls) >= 1))
    assert stopped[-1] is None and len(stopped) == 2


def test_finetune_to_file_refuses_base_path_and_registry(tmp_path):
    img, lab = _pair()
    path = save_model(build_model(ModelConfig(width=8, depth=3)), tmp_path / "base.pt")
    base = load_model(path)
    with pytest.raises(SemiconvError, match="is the base model"):
        finetune_to_file(base, [img], [lab], FinetuneConfig(steps=1, crop=96, batch=1), path)
    meta = finetune_to_file(base, [img], [lab], FinetuneConfig(steps=2, crop=96, batch=1), tmp_path / "new.pt",
                            image_names=["a.tif"])
    assert meta["base_model"] == str(path) and meta["steps"] == 2 and meta["images"] == ["a.tif"]
    reg = Registry()
    e1 = reg.add(load_model(tmp_path / "new.pt"), "lab model", meta)
    e2 = reg.add(load_model(tmp_path / "new.pt"), "lab model", meta)
    assert (e1.name, e2.name) == ("lab_model", "lab_model-2")
    reg.rename("lab_model-2", "other")
    with pytest.raises(SemiconvError, match="already exists"):
        reg.rename("other", "lab_model")
    assert reg.export("other", tmp_path).name == "other.pt"
    reg.delete("other")
    assert [e.name for e in reg.list()] == ["lab_model"]


def test_finetuned_model_keeps_the_size_of_the_annotated_worms(tmp_path):
    from napari_semiconv.data.synthetic import SceneConfig, make_scene

    scene = make_scene(12, SceneConfig(worms=(12, 12), scale=(1.8, 1.8)))
    base = build_model(ModelConfig(width=8, depth=3))
    config = FinetuneConfig(steps=1, crop=64, batch=1, tune_thresholds=False)  # an untrained net: nothing to tune
    meta = finetune_to_file(base, [scene.image], [scene.labels], config, tmp_path / "big.pt")
    model = load_model(tmp_path / "big.pt")
    assert 1.5 < model.config.input_scale < 2.1 and meta["input_scale"] == model.config.input_scale
    assert meta["base_input_scale"] == 1.0 and base.config.input_scale == 1.0
    same = finetune_to_file(base, [scene.image], [scene.labels], replace(config, match_size=False), tmp_path / "s.pt")
    assert same["input_scale"] == 1.0


@pytest.mark.parametrize("scale", [0.5, 1.5, 2.0, 3.0])
def test_cli_finetune_at_any_magnification(tmp_path, capsys, scale):
    """Worms 0.5x to 3x the training width: fine-tuning (with synthetic replay at that size) runs and the
    model it writes records the magnification and segments an image of that kind."""
    import json

    import tifffile

    from napari_semiconv.cli import main
    from napari_semiconv.data.sources import TEST_SEED0
    from napari_semiconv.data.synthetic import FIELD, SceneConfig, make_scene

    args = []
    worms = max(3, round(20 / scale**2))  # a field as crowded (in worm sizes) as a 1x one with 20 worms
    for i in range(2):
        side = (min(FIELD[0], int(260 * scale)), min(FIELD[1], int(260 * scale)))
        s = make_scene(TEST_SEED0 + 5000 + i, SceneConfig(style="brightfield", worms=(worms, worms),
                                                          scale=(scale, scale)), window=(0, 0, *side))
        tifffile.imwrite(tmp_path / f"a{i}.tif", s.image)
        tifffile.imwrite(tmp_path / f"a{i}_labels.tif", s.labels)
        args.append(i)
    out = tmp_path / "ft.pt"
    code = main(["finetune", "--images", *[str(tmp_path / f"a{i}.tif") for i in args],
                 "--labels", *[str(tmp_path / f"a{i}_labels.tif") for i in args], "--steps", "2", "--out", str(out)])
    assert code == 0 and out.is_file()
    scale_found = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["input_scale"]
    assert scale_found == 1.0 if scale == 1.0 else 0.7 * scale < scale_found < 1.4 * scale
    assert load_model(out).config.input_scale == scale_found
    assert main(["segment", str(tmp_path / "a0.tif"), "--model", str(out), "--out", str(tmp_path / "seg"),
                 "--quiet"]) == 0
    assert (tmp_path / "seg" / "a0_labels.tif").is_file()


def test_worms_too_thin_say_so(tmp_path, capsys):
    from napari_semiconv.segment import SegmentConfig
    from napari_semiconv.worm_size import scale_for_width

    with pytest.raises(SemiconvError, match="too thin"):
        scale_for_width(2.0, 12.0)
    with pytest.raises(SemiconvError, match="too thin"):
        SegmentConfig(worm_width=2.5)


def test_finetune_calls_progress_once_per_step():
    from napari_semiconv.finetune import finetune

    img, lab = _pair()
    seen = []
    model, last = finetune(build_model(ModelConfig(width=8, depth=3)), [img], [lab],
                           config=FinetuneConfig(steps=4, crop=96, batch=1), progress=seen.append)
    assert [p.step for p in seen] == [1, 2, 3, 4] and last is seen[-1] and model is not None


def test_finetune_chooses_thresholds_on_the_users_labels_and_segment_uses_them(shipped):
    from napari_semiconv.decode import model_decode_config, model_thresholds
    from napari_semiconv.finetune import CLEAR_GAIN, THRESHOLD_GRID, finetune, finetune_metadata, finetune_summary
    from napari_semiconv.segment import SegmentConfig, segment_iter

    img, lab = _pair()
    base = shipped
    config = FinetuneConfig(steps=2, crop=96, batch=1)
    model, last = finetune(base, [img], [lab], config=config)
    chosen = model_thresholds(model)
    own = {k: getattr(model_decode_config(base), k) for k in (*THRESHOLD_GRID, "min_score")}  # stored or default
    assert set(chosen) == set(own)
    assert chosen["min_score"] == model_decode_config(base).min_score  # the base model's score cut stays
    gain = model.metadata["user_images"]
    assert 0 <= gain["base_avS"] <= 1 and gain["finetuned_avS"] >= gain["finetuned_avS_base_thresholds"]
    if chosen != own:  # new thresholds only for a clear gain on the labels
        assert all(chosen[k] in THRESHOLD_GRID[k] for k in THRESHOLD_GRID)
        assert gain["finetuned_avS"] >= gain["finetuned_avS_base_thresholds"] + CLEAR_GAIN
    meta = finetune_metadata(base, model, config, last, ["a"])
    assert meta["decode"] == {**chosen, "pool": model_decode_config(base).pool} and "thresholds checked on your labels" in finetune_summary(meta)
    # the base model's instance rescorer, with which its score cut was chosen, goes with the fine-tuned model
    assert model.metadata.get("rescorer") == base.metadata.get("rescorer")
    assert model_decode_config(model).rescorer == model_decode_config(base).rescorer
    # and so does its way of decoding (the pool of joinings the rescorer was fitted to choose from)
    assert model_decode_config(model).pool == model_decode_config(base).pool
    # a later segmentation without explicit thresholds decodes with the model's own
    def worms(stored):
        model.metadata = {"decode": stored}
        return list(segment_iter(model, img, SegmentConfig(keep_embedding=False)))[-1].labels.max()

    assert worms({"fg_threshold": 1.0}) == 0 and worms({"fg_threshold": 0.001, "kernel_threshold": 0.5}) > 0
    untuned, _ = finetune(base, [img], [lab], config=replace(config, tune_thresholds=False))
    assert "user_images" not in untuned.metadata and untuned.metadata.get("rescorer") == base.metadata.get("rescorer")
    assert model_decode_config(untuned).pool == model_decode_config(base).pool
    # a model that marks most pixels as worm is not tuned (nothing to gain, slow to decode): said so
    everywhere = build_model(ModelConfig(width=8, depth=3))
    torch.nn.init.constant_(everywhere.fg_head.bias, 20.0)  # foreground at every pixel, whatever it learns in 2 steps
    blind, _ = finetune(everywhere, [img], [lab], config=config)
    assert blind.metadata["user_images"]["scored_on"].startswith("not scored")


def test_held_back_part_is_the_far_end_of_each_region_and_needs_worms_on_both_sides():
    from napari_semiconv.finetune import split_held_back

    worms = np.zeros((2, 40, 80), bool)
    worms[0, 10:14, 5:75] = True  # a long worm across the image
    worms[1, 30:34, 5:20] = True
    train, held = split_held_back([worms], [None], 0.25)
    assert held[0][:, 60:].all() and not held[0][:, :60].any()  # the last quarter of the (wider) image
    assert (train[0] == ~held[0] & ~worms[0]).all()  # the worm that reaches into the held-back part is not trained on
    assert train[0][worms[1]].all()
    region = np.zeros((40, 80), bool)
    region[:, :40] = True  # a region: the held part is the last quarter of the region, not of the image
    train, held = split_held_back([worms], [region], 0.25)
    assert held[0][:, 30:40].all() and held[0].sum() == 400 and not (train[0] & held[0]).any()
    assert not (train[0] & worms[0]).any() and train[0][worms[1]].all()
    left = worms.copy()
    left[:, :, 50:] = False  # no worm in the last quarter: nothing to score there, so nothing is held back
    train, held = split_held_back([left], [None], 0.25)
    assert held == [None] and train == [None]
    assert split_held_back([worms], [None], 0.0)[1] == [None]


def test_from_three_images_on_the_last_is_held_back_whole_and_never_trained_on(shipped, monkeypatch):
    from napari_semiconv.data.synthetic import SceneConfig, make_scene
    from napari_semiconv.finetune import HOLD_BACK_IMAGE, finetune, split_held_back

    scenes = [make_scene(k, SceneConfig(worms=(20, 20)), window=(60, 60, 160, 160)) for k in (11, 14, 15)]
    stacks = [s.instances for s in scenes]
    region = np.zeros((160, 160), bool)
    region[:, :120] = True
    train, held = split_held_back(stacks, [None, region, region], 0.25)
    assert train[0] is None and (train[1] == region).all() and not train[2].any()  # the first two whole
    assert held[:2] == [None, None] and (held[2] == region).all()
    import napari_semiconv.finetune as ft

    seen, original = [], ft.ListSource
    monkeypatch.setattr(ft, "ListSource", lambda images, *rest: seen.append(len(images)) or original(images, *rest))
    config = FinetuneConfig(steps=2, crop=96, batch=1, replay=0)
    model, _ = finetune(shipped, [s.image for s in scenes], [s.labels for s in scenes], config=config)
    assert seen == [HOLD_BACK_IMAGE - 1]  # the held-back image is not among the training images
    assert model.metadata["user_images"]["scored_on"].startswith("the held-back part of 1 annotated image")


def test_trained_weights_that_do_worse_on_the_held_back_part_are_not_kept(shipped):
    from napari_semiconv.data.synthetic import SceneConfig, make_scene
    from napari_semiconv.finetune import WEIGHTS_GAIN, Annotations, finetune_summary, keep_or_not, split_held_back

    scene = make_scene(12, SceneConfig(worms=(20, 20)), window=(60, 60, 256, 256))  # the base finds worms held back
    imgs, stacks, valid = check_annotations([scene.image], [scene.labels])
    _, held = split_held_back(stacks, valid, 0.25)
    assert held[0] is not None
    worse = copy.deepcopy(shipped)
    with torch.no_grad():  # "training" that lost every worm: no pixel is counted as worm
        worse.count_head[-1].bias[:] = torch.tensor([30.0, -30.0, -30.0])
    kept = keep_or_not(shipped, worse, Annotations(imgs, stacks, valid, held))
    assert kept.metadata["training_kept"] is False
    assert kept.count_head[-1].bias is shipped.count_head[-1].bias  # the base model's weights, not the trained ones
    gain = kept.metadata["user_images"]
    assert gain["trained_avS"] < gain["finetuned_avS"] and gain["scored_on"].startswith("the held-back part")
    assert gain["held_worms"] > 0 and gain["needed_gain"] == round(max(WEIGHTS_GAIN, 2 / gain["held_worms"]), 3)
    assert "keeps the base model's weights" in finetune_summary({"steps": 3, "seconds": 1.0, **kept.metadata})
    same = keep_or_not(shipped, copy.deepcopy(shipped), Annotations(imgs, stacks, valid, held))
    assert same.metadata["training_kept"] is False  # a tie keeps the base model's known weights


def test_trained_weights_need_two_held_back_worms_worth_of_gain():
    from napari_semiconv.finetune import WEIGHTS_GAIN, weights_gain

    stack = np.zeros((5, 40, 40), bool)
    for k in range(5):  # five worms in rows 8k .. 8k+3; the region holds the first two
        stack[k, 8 * k:8 * k + 4, 5:35] = True
    region = np.zeros((40, 40), bool)
    region[:14] = True
    assert weights_gain([stack], [region]) == (1.0, 2)  # two worms: a gain of both
    many = np.repeat(stack, 20, axis=0)  # 100 worms reach in: the floor holds
    assert weights_gain([many, many], [np.ones((40, 40), bool)] * 2) == (WEIGHTS_GAIN, 200)


def test_training_the_heads_on_cached_features_leaves_the_backbone_and_lowers_the_loss():
    from napari_semiconv.data.synthetic import SceneConfig, make_scene

    scene = make_scene(11, SceneConfig(worms=(20, 20)), window=(100, 100, 192, 192))
    base = build_model(ModelConfig(width=8, depth=3, target="flow", dim=2))
    config = FinetuneConfig(steps=60, crop=96, batch=2, hold_back=0, replay=0, train="heads", lr=1e-2)
    items = list(finetune_iter(base, [scene.image], [scene.labels], config=config))
    new, losses = items[-1], [p.losses["total"] for p in items[:-1]]
    changed = {k for k, v in base.state_dict().items() if not torch.equal(new.state_dict()[k], v)}
    assert changed and not any(k.startswith("backbone.") for k in changed)  # the heads alone learned
    assert all(p.requires_grad for p in new.parameters())  # nothing left frozen for later training
    assert np.mean(losses[-10:]) < 0.8 * np.mean(losses[:10])


def test_a_worm_painted_in_two_pieces_under_a_crossing_gets_its_hidden_part_back():
    from napari_semiconv.finetune import restore_crossings

    labels = np.zeros((100, 100), np.uint16)
    labels[45:56, 10:91] = 1  # the lower worm, horizontal
    labels[10:91, 45:56] = 2  # the upper worm, vertical, painted over it: worm 1 is in two pieces
    labels[5:12, 5:30] = 3  # a worm in one piece, away from the others
    stack, unsure = restore_crossings(labels)
    crossing = np.zeros_like(unsure)
    crossing[45:56, 45:56] = True
    np.testing.assert_array_equal(stack[0], (labels == 1) | crossing)  # the crossing joins the two pieces
    np.testing.assert_array_equal(stack[1], labels == 2)
    np.testing.assert_array_equal(stack[2], labels == 3)
    np.testing.assert_array_equal(stack.sum(0) >= 2, crossing)  # the crossing is in both worms
    assert unsure[crossing].all() and not unsure[labels == 3].any() and unsure.sum() < 3 * crossing.sum()
    _, stacks, valid = check_annotations([labels.astype(np.float32)], [labels])
    np.testing.assert_array_equal(stacks[0], stack)
    np.testing.assert_array_equal(valid[0], ~unsure)  # not trained on where the annotation is a guess


def test_thresholds_change_only_for_a_clear_gain_on_the_labels(shipped, monkeypatch):
    from napari_semiconv import finetune as ft
    from napari_semiconv.decode import model_decode_config

    img, lab = _pair()
    imgs, stacks, valid = check_annotations([img], [lab])
    own = {k: getattr(model_decode_config(shipped), k) for k in (*ft.THRESHOLD_GRID, "min_score")}  # stored or default
    monkeypatch.setattr(ft, "CLEAR_GAIN", 1.0)  # no gain is clear: the model keeps its own
    kept = ft.choose_thresholds(shipped, shipped, imgs, stacks, valid)
    assert kept["decode"] == {**own, "pool": model_decode_config(shipped).pool}  # the shipped model decodes a pool
    assert kept["user_images"]["finetuned_avS"] == kept["user_images"]["finetuned_avS_base_thresholds"]
    monkeypatch.setattr(ft, "CLEAR_GAIN", -1.0)  # any point of the grid will do: its best is taken
    best = ft.choose_thresholds(shipped, shipped, imgs, stacks, valid)
    assert all(best["decode"][k] in ft.THRESHOLD_GRID[k] for k in ft.THRESHOLD_GRID)
    assert best["decode"]["pool"] == model_decode_config(shipped).pool
