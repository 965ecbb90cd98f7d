import pytest

from napari_semiconv.data.sources import TEST_SEED0
from napari_semiconv.data.synthetic import SceneConfig, make_scene


@pytest.fixture
def scene():
    """A small brightfield field (a window of a fresh held-out scene) to keep widget tests fast."""
    return make_scene(TEST_SEED0 + 901, SceneConfig(style="brightfield", worms=(25, 25)), window=(60, 100, 256, 320))


@pytest.fixture
def viewer_with_scene(make_napari_viewer, scene):
    viewer = make_napari_viewer()
    viewer.window._qt_window.resize(1400, 900)
    layer = viewer.add_image(scene.image, name="field")
    return viewer, layer, scene


def run_and_wait(qtbot, widget, timeout=120_000):
    """Run a dock and wait until it is idle again (its worker ended, its layers shown). Waits on the dock's
    state, not on the worker's ``finished`` signal, which a quick run can send before a wait begins."""
    assert widget.run() is not None and not widget.run_button.enabled
    qtbot.waitUntil(lambda: widget.run_button.enabled, timeout=timeout)


def dock(viewer, widget_class):
    """Create a dock widget, add it to the viewer's right side, populate its layer choices."""
    widget = widget_class(viewer)
    viewer.window.add_dock_widget(widget, area="right")
    (widget.controls if hasattr(widget, "controls") else widget).reset_choices()
    return widget
