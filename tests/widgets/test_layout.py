"""All four docks open at once on a 1600 x 1200 screen: plots keep a legible size, the window keeps its own,
and each dock's content fits its width."""

import numpy as np
from qtpy.QtWidgets import QDockWidget, QScrollArea

from napari_semiconv._widgets.finetune import FinetuneWidget
from napari_semiconv._widgets.inspect import InspectWidget
from napari_semiconv._widgets.measure import MeasureWidget
from napari_semiconv._widgets.plots import MIN_PLOT_HEIGHT
from napari_semiconv._widgets.segment import SegmentWidget

from .conftest import dock


def _dock_of(widget):
    while not isinstance(widget, QDockWidget):
        widget = widget.parent()
    return widget


def test_four_docks_share_tabs_keep_their_plots_and_the_window_size(make_napari_viewer, qtbot, tmp_path):
    viewer = make_napari_viewer(show=True)
    window = viewer.window._qt_window
    window.resize(1600, 1200)
    qtbot.wait(50)
    size = window.size()
    docks = [dock(viewer, cls) for cls in (SegmentWidget, InspectWidget, FinetuneWidget, MeasureWidget)]
    qtbot.wait(200)
    qdocks = [_dock_of(w) for w in docks]
    assert set(window.tabifiedDockWidgets(qdocks[0])) == set(qdocks[1:])  # one tabbed place, not a stack
    finetune = docks[2]
    finetune.status.value = "a long message after fine-tuning " * 12  # wraps, does not widen the dock
    for widget, qdock in zip(docks[1:], qdocks[1:]):  # each plot shows at a legible size on its tab
        qdock.raise_()
        qtbot.wait(100)
        assert widget.canvas.visibleRegion().boundingRect().height() >= MIN_PLOT_HEIGHT
    assert window.size() == size  # nothing grows the main window
    assert qdocks[2].width() < 0.4 * size.width()
    assert viewer.window._qt_viewer.canvas.native.width() > 0.5 * size.width()
    path = tmp_path / "docks.png"  # (to look at it: pytest --basetemp DIR)
    viewer.screenshot(str(path), canvas_only=False)
    assert path.stat().st_size > 10_000


def test_each_dock_fits_its_width_with_nothing_clipped(make_napari_viewer, qtbot):
    """At the window's normal size, with long layer names, a registry model chosen (its rename / delete /
    save as buttons shown) and long status messages, no dock's content is wider than the dock shows."""
    from napari_semiconv.model import build_model
    from napari_semiconv.registry import Registry

    Registry().add(build_model(), "lab scope", {"steps": 3})
    viewer = make_napari_viewer(show=True)
    window = viewer.window._qt_window
    qtbot.wait(50)
    size = window.size()
    viewer.add_image(np.zeros((64, 64), np.float32), name="worms brightfield scope 2 plate 17")
    viewer.add_labels(np.zeros((64, 64), np.int32), name="worms brightfield scope 2 plate 17 fine-tuned worms")
    widgets = [dock(viewer, cls) for cls in (SegmentWidget, InspectWidget, FinetuneWidget, MeasureWidget)]
    for widget in (widgets[0], widgets[2]):
        widget.model.refresh(select="lab_scope")
    for widget in widgets:
        widget.status.value = "a long message from the dock after a run " * 8
    for widget in widgets:
        qdock = _dock_of(widget)
        qdock.raise_()
        qtbot.wait(100)
        name = type(widget).__name__
        area = qdock.widget().findChild(QScrollArea)
        assert area is not None, name  # a short dock scrolls its content
        content, shown = area.widget(), area.viewport().width()
        assert content.minimumSizeHint().width() <= shown, name
        assert content.width() <= shown, name  # laid out at the width it shows in: no right edge cut off
        assert not area.horizontalScrollBar().isVisible(), name
    assert window.size() == size  # the docks fit without growing the main window
