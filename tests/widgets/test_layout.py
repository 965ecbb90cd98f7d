"""All four docks open at once on a 1600 x 1200 screen: plots keep a legible size, the window keeps its own."""

from qtpy.QtWidgets import QDockWidget

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
    qdocks = [_dock_of(docks[0].native)] + [_dock_of(w) for w in docks[1:]]
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
