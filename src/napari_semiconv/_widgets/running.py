"""What a dock does while it runs long work: Run/Cancel state, and keeping the garbage collector out of the viewer."""


class RunControls:
    """Mixin for docks with ``run_button``, ``cancel_button`` and a ``status`` label."""

    def _set_running(self, running: bool):
        self.run_button.enabled = not running
        self.cancel_button.enabled = running

    def _error(self, exc):
        from napari.utils.notifications import show_error

        self._set_running(False)
        self.status.value = f"error: {exc}"
        show_error(str(exc))


def freeze_long_lived_objects() -> None:
    """Move the objects alive now (napari, torch, the model) out of the garbage collector's reach, once.

    Python's full collection walks every tracked object; with napari and torch loaded that took 208 ms
    here and, landing in the main thread after a segmentation, froze the viewer. ``gc.freeze`` leaves
    those long-lived objects out of later collections (objects made afterwards are collected as usual).
    """
    import gc

    if gc.get_freeze_count() == 0:
        gc.freeze()
