import numpy as np

from napari_semiconv._widgets.segment import SegmentWidget
from napari_semiconv.metrics import s_score

from .conftest import dock, run_and_wait


def _dock(viewer):
    return dock(viewer, SegmentWidget)


def test_segment_adds_three_layers_and_updates_in_place(viewer_with_scene, qtbot):
    viewer, layer, scene = viewer_with_scene
    widget = _dock(viewer)
    assert widget.image.value is layer
    run_and_wait(qtbot, widget)
    worms = viewer.layers["field worms"]
    vectors = viewer.layers["field displacement"]
    fg = viewer.layers["field foreground"]
    assert type(worms).__name__ == "Labels" and worms.data.shape == scene.image.shape
    assert type(vectors).__name__ == "Vectors" and vectors.data.shape[1:] == (2, 2) and len(vectors.data) > 50
    assert type(fg).__name__ == "Image" and not fg.visible
    assert viewer.layers.selection.active is worms  # ready to correct
    n = len(np.unique(worms.data)) - 1
    assert 0.5 * len(scene.instances) <= n <= 1.6 * len(scene.instances)
    assert s_score(worms.data, scene.instances, 0.5) > 0.4
    assert {"label", "score", "length", "straightness"} <= set(worms.features.columns)
    # arrows point to points shared by their worm (one per piece of it: a worm joined across crossings or contacts
    # has several): in most worms their tips gather, the tails do not ...
    tips = vectors.data[:, 0] + vectors.data[:, 1]
    ids = vectors.features["worm"].to_numpy()
    counts = np.bincount(ids[ids > 0])
    many = np.flatnonzero(counts >= 5)
    gather = [tips[ids == k].std(0).sum() / vectors.data[ids == k, 0].std(0).sum() for k in many]
    assert len(many) >= 3 and np.median(gather) < 0.5, gather
    # ... and they point at their worm: the model's common shift of all votes is removed
    near = []
    for k in many:  # loop over the (tens of) worms
        rows, cols = np.nonzero(worms.data == k)
        extent = np.hypot(np.ptp(rows), np.ptp(cols))
        near.append(np.linalg.norm(np.median(tips[ids == k], 0) - (rows.mean(), cols.mean())) < 0.3 * extent)
    assert np.mean(near) > 0.8, near
    n_layers, n_vectors = len(viewer.layers), len(vectors.data)
    widget.stride.value = 16
    run_and_wait(qtbot, widget)
    assert len(viewer.layers) == n_layers  # updated, not duplicated
    assert viewer.layers["field worms"] is worms and len(vectors.data) < 0.5 * n_vectors


def test_edited_labels_are_not_replaced_without_asking(viewer_with_scene, qtbot):
    viewer, _layer, _scene = viewer_with_scene
    widget = _dock(viewer)
    run_and_wait(qtbot, widget)
    worms = viewer.layers["field worms"]
    worms.data[:20, :20] = 99  # the user paints
    worms.refresh()
    asked = []
    widget.confirm = lambda q: asked.append(q) or False  # the user answers "No"
    run_and_wait(qtbot, widget)
    assert asked and (worms.data[:20, :20] == 99).all()
    assert len([lyr for lyr in viewer.layers if lyr.name.startswith("field worms")]) == 2


def test_cancel_leaves_no_layers(viewer_with_scene, qtbot):
    viewer, layer, _ = viewer_with_scene
    viewer.add_image(np.stack([layer.data] * 4), name="stack")
    widget = _dock(viewer)
    widget.image.value = viewer.layers["stack"]
    worker = widget.run()
    with qtbot.waitSignal(worker.finished, timeout=120_000):
        widget.cancel()
    assert "stack worms" not in viewer.layers and widget.status.value == "cancelled"
    assert widget.run_button.enabled


def test_stack_runs_plane_by_plane(viewer_with_scene, qtbot):
    viewer, layer, _ = viewer_with_scene
    viewer.add_image(np.stack([layer.data, layer.data[:, ::-1]]), name="stack")
    widget = _dock(viewer)
    widget.image.value = viewer.layers["stack"]
    run_and_wait(qtbot, widget)
    worms = viewer.layers["stack worms"].data
    assert worms.shape == (2,) + layer.data.shape
    assert viewer.layers["stack displacement"].data.shape[2] == 3
    assert abs((worms[0] > 0).sum() - (worms[1] > 0).sum()) < 0.2 * (worms[0] > 0).sum()


def test_rgb_image_gets_a_clear_message(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((64, 64, 3), np.uint8), name="rgb", rgb=True)
    widget = _dock(viewer)
    assert widget.run() is None
    assert "RGB" in widget.status.value and "rgb worms" not in viewer.layers


def test_registry_models_can_be_renamed_exported_and_deleted(make_napari_viewer, qtbot, tmp_path):
    from napari_semiconv.model import build_model, load_model
    from napari_semiconv.registry import Registry

    Registry().add(build_model(), "lab scope", {"steps": 3})
    widget = _dock(make_napari_viewer())
    chooser = widget.model
    chooser.refresh(select="lab_scope")
    assert not chooser.manage.native.isHidden()  # the rename/delete/save-as row shows
    chooser.ask_name = lambda current: "scope 2"
    chooser.rename()
    assert [e.name for e in Registry().list()] == ["scope_2"] and chooser.source.value == "scope_2"
    chooser.ask_path = lambda name: str(tmp_path / "shared.pt")
    chooser.export()
    assert load_model(tmp_path / "shared.pt").metadata["steps"] == 3
    chooser.confirm = lambda question: False  # the user says No: nothing is deleted
    chooser.delete()
    assert [e.name for e in Registry().list()] == ["scope_2"]
    chooser.confirm = lambda question: True
    chooser.delete()
    assert Registry().list() == [] and chooser.source.value == "shipped default" and chooser.manage.native.isHidden()


def test_decoder_controls_reach_the_config(viewer_with_scene):
    from dataclasses import replace

    viewer, _layer, _scene = viewer_with_scene
    widget = _dock(viewer)
    # the dock starts at the shipped model's own thresholds and instance rescorer (k only matters for kmeans)
    from napari_semiconv.decode import model_decode_config, model_thresholds

    assert replace(widget.config().decode, k=0) == model_decode_config(widget.model.load())
    assert widget.config().decode.rescorer is not None
    assert widget.min_score.value == model_thresholds(widget.model.load()).get("min_score", 0.0)
    widget.merge_threshold.value = 0.0
    widget.kernel_threshold.value = 0.6
    widget.min_score.value = 0.3
    dec = widget.config().decode
    assert dec.merge_threshold == 0.0 and dec.kernel_threshold == 0.6 and dec.min_score == 0.3
    assert widget.config().worm_width == 0.0  # the model's own scale unless told
    widget.worm_width.value = 18.0
    assert widget.config().worm_width == 18.0


def test_failures_end_the_run_and_are_said_once_in_the_viewer(viewer_with_scene, qtbot, monkeypatch):
    from napari.utils import progress
    from napari.utils.notifications import notification_manager

    import napari_semiconv._widgets.segment as dock_module

    viewer, layer, _ = viewer_with_scene
    widget = _dock(viewer)
    for bad, said in ((np.full((64, 64), np.nan, np.float32), "NaN"), (np.zeros((1, 1), np.float32), "tiny")):
        widget.image.value = viewer.add_image(bad, name="bad")
        before = len(notification_manager.records)
        assert widget.run() is None  # refused before any work
        assert widget.run_button.enabled and said in widget.status.value
        assert len(notification_manager.records) == before + 1
        viewer.layers.remove("bad")

    def out_of_memory(*args, **kwargs):  # the failure, not the model, is simulated
        yield {}
        raise MemoryError

    monkeypatch.setattr(dock_module, "segment_to_layers", out_of_memory)
    widget.image.value = layer
    before, bars = len(notification_manager.records), set(progress._all_instances)
    assert widget.run() is not None  # started (it may end before a signal could be waited for)
    qtbot.waitUntil(lambda: widget.run_button.enabled and "out of memory" in widget.status.value, timeout=60_000)
    assert not widget.cancel_button.enabled
    said = [str(n.message) for n in notification_manager.records[before:]]
    assert len(said) == 1 and "out of memory" in said[0]  # once, and no traceback relayed
    assert not set(progress._all_instances) - bars  # the run's progress bar ended


def test_worm_width_segments_a_magnified_field(make_napari_viewer, qtbot):
    """Worms 1.7x as wide as the model's, with their width given: the dock segments the field at the model's size and
    shows the worms and arrows on the image's own pixels (arrows pointing into their worms)."""
    from napari_semiconv.data.sources import TEST_SEED0
    from napari_semiconv.data.synthetic import SceneConfig, make_scene
    from napari_semiconv.registry import resolve_model
    from napari_semiconv.worm_size import trained_worm_width

    scene = make_scene(TEST_SEED0 + 950, SceneConfig(style="brightfield", worms=(8, 8), scale=(1.7, 1.7)),
                       window=(0, 0, 340, 420))
    viewer = make_napari_viewer()
    viewer.window._qt_window.resize(1400, 900)
    viewer.add_image(scene.image, name="big")
    widget = _dock(viewer)
    widget.worm_width.value = 1.7 * trained_worm_width(resolve_model(None, "cpu"))
    run_and_wait(qtbot, widget)
    worms, vectors = viewer.layers["big worms"], viewer.layers["big displacement"]
    assert worms.data.shape == scene.image.shape
    assert s_score(worms.data, scene.instances, 0.5) > 0.5
    tips = vectors.data[:, 0] + vectors.data[:, 1]
    ids = vectors.features["worm"].to_numpy()
    # each worm's arrows end where its votes gather (0.07 of its tails' spread here; arrows left at the model's size,
    # 1 / 1.7 as long, would spread 0.42)
    spread = [tips[ids == i].std(0).sum() / vectors.data[ids == i, 0].std(0).sum() for i in np.unique(ids[ids > 0])]
    assert len(spread) >= 2 and np.median(spread) < 0.2, spread
