import numpy as np

from napari_semiconv._widgets.inspect import InspectWidget
from napari_semiconv._widgets.measure import MeasureWidget
from napari_semiconv._widgets.segment import SegmentWidget

from .conftest import dock, run_and_wait


def _segmented(viewer, qtbot):
    seg = dock(viewer, SegmentWidget)
    run_and_wait(qtbot, seg)
    return viewer.layers["field worms"]


def test_click_shows_affinity_and_plot_selects_worm(viewer_with_scene, qtbot):
    viewer, layer, _scene = viewer_with_scene
    worms = _segmented(viewer, qtbot)
    widget = InspectWidget(viewer)
    viewer.window.add_dock_widget(widget, area="right")
    widget.worms.value = worms
    label = int(np.bincount(worms.data[worms.data > 0]).argmax())
    r, c = np.argwhere(worms.data == label)[len(np.argwhere(worms.data == label)) // 2]
    aff = widget.inspect(int(r), int(c))
    affinity = viewer.layers["field affinity"]
    assert affinity.data.shape == layer.data.shape and affinity.data[r, c] == 1.0
    inside = aff[worms.data == label].mean()
    outside = aff[(worms.data > 0) & (worms.data != label)].mean()
    assert inside > 0.5 > outside
    seeded = viewer.layers["field seeded worm"].data.astype(bool)
    iou = (seeded & (worms.data == label)).sum() / (seeded | (worms.data == label)).sum()
    assert iou > 0.5
    # click in the plot at the marked pixel's spatial embedding -> that worm gets selected
    psi = worms.metadata["napari_semiconv"]["results"][0].embedding[:, r, c] * 64.0
    assert widget.select_from_plot(0, psi[0], psi[1]) == label
    assert worms.selected_label == label and worms.show_selected_label
    rgb = widget.show_rgb()
    assert rgb.rgb and rgb.data.shape == layer.data.shape + (3,)


def test_mouse_click_callback_is_wired(viewer_with_scene, qtbot):
    viewer, layer, _ = viewer_with_scene
    worms = _segmented(viewer, qtbot)
    widget = InspectWidget(viewer)
    widget.worms.value = worms
    assert widget._on_click in worms.mouse_drag_callbacks and widget._on_click in layer.mouse_drag_callbacks


def test_measure_table_and_export(viewer_with_scene, qtbot, tmp_path):
    viewer, _layer, _ = viewer_with_scene
    worms = _segmented(viewer, qtbot)
    widget = MeasureWidget(viewer)
    viewer.window.add_dock_widget(widget, area="right")
    widget.worms.value = worms
    n = len(np.unique(worms.data)) - 1
    assert widget.table.shape[0] == n
    worms.data[worms.data == 1] = 0  # the user deletes a worm, then re-measures
    widget.measure()
    assert len(worms.features) == n - 1 and 1 not in set(worms.features["label"])
    widget.path.value = tmp_path / "worms.csv"
    out = widget.export()
    lines = out.read_text().splitlines()
    assert len(lines) == n and lines[0].startswith("label,score,area")


def test_docks_default_to_the_latest_segmentation_and_follow_the_selection(viewer_with_scene, qtbot):
    viewer, _layer, scene = viewer_with_scene
    truth = viewer.add_labels(scene.labels, name="field ground truth", visible=False)
    inspect, measure = InspectWidget(viewer), MeasureWidget(viewer)
    worms = _segmented(viewer, qtbot)
    assert inspect.worms.value is worms and measure.worms.value is worms  # not the ground truth
    late = MeasureWidget(viewer)  # a dock opened after segmenting starts on the result too
    assert late.worms.value is worms
    viewer.layers.selection.active = truth
    assert measure.worms.value is truth and inspect.worms.value is truth


def test_measure_keeps_scores_of_unedited_worms(viewer_with_scene, qtbot):
    viewer, _layer, _ = viewer_with_scene
    worms = _segmented(viewer, qtbot)
    widget = MeasureWidget(viewer)
    widget.worms.value = worms
    before = dict(zip(worms.features["label"], worms.features["score"]))
    edited = int(worms.features["label"].iloc[0])
    data = worms.data.copy()
    data[data == edited] = 0
    data[np.nonzero(worms.data == edited)[0].min(), :5] = edited  # redrawn elsewhere
    worms.data = data
    widget.measure()
    after = dict(zip(worms.features["label"], worms.features["score"]))
    assert np.isnan(after[edited]) and str(edited) in widget.status.value
    assert all(after[k] == before[k] for k in after if k != edited)


def test_measure_plots_are_linked_to_the_worms_layer(viewer_with_scene, qtbot):
    viewer, _layer, _ = viewer_with_scene
    worms = _segmented(viewer, qtbot)
    widget = MeasureWidget(viewer)
    widget.worms.value = worms
    df = worms.features
    points = widget.ax_scatter.collections[0].get_offsets()
    assert len(points) == len(df)  # one point per worm
    assert sum(p.get_height() for p in widget.ax_length.patches) == len(df)  # every worm in the histogram
    k = len(df) // 2
    label = widget.select_from_plot(df["length"].iloc[k], df["mean_width"].iloc[k])  # plot -> layer
    assert label == df["label"].iloc[k] and worms.selected_label == label and worms.show_selected_label
    other = int(df["label"].iloc[0])
    worms.selected_label = other  # layer -> plot: the worm's point is starred
    star = widget.ax_scatter.lines[-1].get_xydata()[0]
    assert np.allclose(star, [df["length"].iloc[0], df["mean_width"].iloc[0]])
