"""Docks that stay readable when several are open: the plugin's docks share one tabbed place (each
gets the full height), plots have a minimum size, and a dock's content scrolls when the dock is short
(it never squeezes its plots to a few pixels nor grows the main window past the screen)."""

from qtpy.QtCore import QEvent, QObject
from qtpy.QtWidgets import QDockWidget, QFrame, QMainWindow, QScrollArea, QVBoxLayout, QWidget

MIN_PLOT_HEIGHT = 240  # px: axes, ticks and a title stay legible


def plot_canvas(figsize: tuple[float, float], min_height: int = MIN_PLOT_HEIGHT):
    """A matplotlib ``(Figure, Qt canvas)`` pair with constrained layout and a minimum height."""
    from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=figsize, layout="constrained")
    canvas = FigureCanvasQTAgg(figure)
    canvas.setMinimumHeight(min_height)
    return figure, canvas


def scrolling(owner: QWidget, *widgets: QWidget) -> QScrollArea:
    """Lay ``widgets`` out top to bottom in a scroll area that fills ``owner``; returns the area."""
    inner = QWidget()
    column = QVBoxLayout(inner)
    for widget in widgets:
        column.addWidget(widget)
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.NoFrame)
    area.setWidget(inner)
    layout = QVBoxLayout(owner)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(area)
    return area


def wrap_text(*labels) -> None:
    """Let magicgui ``Label`` widgets wrap long messages instead of widening their dock."""
    for label in labels:
        label.native.setWordWrap(True)


_MARK = "napari_semiconv_dock"


class _TabOnShow(QObject):
    """Event filter: when its widget shows in a dock, tabify the dock with the plugin's others."""

    def eventFilter(self, obj, event):
        if event.type() == QEvent.Type.Show:
            _tabify(obj)
        return False


def tab_with_siblings(widget: QWidget) -> None:
    """Put the dock that ``widget`` (a Qt widget) will be shown in into tabs with the plugin's other open
    docks on the same side of the window (napari opens each plugin dock stacked below the last)."""
    widget.setProperty(_MARK, True)
    widget._tab_filter = _TabOnShow(widget)  # kept alive with the widget
    widget.installEventFilter(widget._tab_filter)


def _tabify(widget: QWidget) -> None:
    dock = widget.parent()
    while dock is not None and not isinstance(dock, QDockWidget):
        dock = dock.parent()
    window = dock.parent() if dock is not None else None
    if not isinstance(window, QMainWindow) or dock.isFloating():
        return
    side = window.dockWidgetArea(dock)
    ours = [other for other in window.findChildren(QDockWidget)
            if other.isVisible() and not other.isFloating() and window.dockWidgetArea(other) == side
            and _is_ours(other)]
    for other in ours[1:]:  # all into the first one's tabs (idempotent: whichever dock shows last)
        if other not in window.tabifiedDockWidgets(ours[0]):
            window.tabifyDockWidget(ours[0], other)
    if dock in ours:
        dock.raise_()


def _is_ours(dock: QDockWidget) -> bool:
    """Whether one of the plugin's docks is inside ``dock`` (napari wraps a dock's widget)."""
    return any(w.property(_MARK) for w in dock.findChildren(QWidget))
