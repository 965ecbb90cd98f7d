"""Docks that stay readable when several are open: the plugin's docks share one tabbed place (each
gets the full height), plots have a minimum size, and a dock's content scrolls when the dock is short
(it never squeezes its plots to a few pixels nor grows the main window past the screen) and fits its width
(nothing clipped on the right, no horizontal scroll bar)."""

from qtpy.QtCore import QEvent, QObject, QSize, Qt
from qtpy.QtWidgets import (
    QComboBox,
    QDockWidget,
    QFrame,
    QMainWindow,
    QScrollArea,
    QSizePolicy,
    QStyle,
    QStyleOptionComboBox,
    QStylePainter,
    QVBoxLayout,
    QWidget,
)

MIN_PLOT_HEIGHT = 240  # px: axes, ticks and a title stay legible


def plot_canvas(figsize: tuple[float, float], min_height: int = MIN_PLOT_HEIGHT):
    """A matplotlib ``(Figure, Qt canvas)`` pair with constrained layout and a minimum height."""
    from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=figsize, layout="constrained")
    canvas = FigureCanvasQTAgg(figure)
    canvas.setMinimumHeight(min_height)
    return figure, canvas


COMBO_CHARACTERS = 10  # a combo box's minimum width in characters (a longer choice shows elided)


class _VerticalScroll(QScrollArea):
    """Scrolls its content vertically only and is never narrower than the content's minimum width (with
    room for the vertical scroll bar), so the dock around it keeps all of the content in view."""

    def minimumSizeHint(self) -> QSize:
        hint = super().minimumSizeHint()
        width = (self.widget().minimumSizeHint().width() + self.verticalScrollBar().sizeHint().width()
                 + 2 * self.frameWidth())  # napari's style gives scroll areas a frame
        return QSize(max(hint.width(), width), hint.height())

    def event(self, event) -> bool:
        if event.type() == QEvent.Type.LayoutRequest:  # the content changed: let the dock re-read our minimum
            self.updateGeometry()
        return super().event(event)


class _ElidedComboText(QObject):
    """Event filter: paints a combo box as Qt does, with its text elided to the box's width (Qt cuts it)."""

    def eventFilter(self, combo, event):
        if event.type() != QEvent.Type.Paint:
            return False
        painter = QStylePainter(combo)
        option = QStyleOptionComboBox()
        combo.initStyleOption(option)
        painter.drawComplexControl(QStyle.ComplexControl.CC_ComboBox, option)
        field = combo.style().subControlRect(QStyle.ComplexControl.CC_ComboBox, option,
                                             QStyle.SubControl.SC_ComboBoxEditField, combo)
        option.currentText = combo.fontMetrics().elidedText(option.currentText, Qt.TextElideMode.ElideRight,
                                                            field.width() - 2)
        painter.drawControl(QStyle.ControlElement.CE_ComboBoxLabel, option)
        return True


def scrolling(owner: QWidget, *widgets: QWidget) -> QScrollArea:
    """Lay ``widgets`` out top to bottom in a scroll area that fills ``owner``; returns the area.

    Their combo boxes ask for a few characters' width, not their longest choice's (layer names grow:
    'worms brightfield fine-tuned worms'), and show a longer one elided."""
    inner = QWidget()
    column = QVBoxLayout(inner)
    for widget in widgets:
        column.addWidget(widget)
    if not any(widget.sizePolicy().expandingDirections() & Qt.Orientation.Vertical for widget in widgets):
        column.addStretch()  # without a plot to take the spare height, the controls keep theirs (as napari does)
    inner._elide = _ElidedComboText(inner)  # kept alive with the widget
    for combo in inner.findChildren(QComboBox):
        combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        combo.setMinimumContentsLength(COMBO_CHARACTERS)
        combo.installEventFilter(inner._elide)
    area = _VerticalScroll()
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.NoFrame)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    area.setWidget(inner)
    layout = QVBoxLayout(owner)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(area)
    return area


def wrap_text(*labels) -> None:
    """Let magicgui ``Label`` widgets wrap long messages instead of widening their dock.

    magicgui's Labels have a fixed size policy, which holds a wrapping label at its preferred size: a long
    status message made a row 574 px wide, and a narrower label showed only the lines of that size. With a
    preferred one, the width may shrink to the longest word and the height follows the lines."""
    for label in labels:
        label.native.setWordWrap(True)
        policy = label.native.sizePolicy()  # keeps the height-for-width that word wrap set
        policy.setHorizontalPolicy(QSizePolicy.Policy.Preferred)
        policy.setVerticalPolicy(QSizePolicy.Policy.Preferred)
        label.native.setSizePolicy(policy)


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
