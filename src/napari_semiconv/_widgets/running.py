"""What a dock does while it runs long work: Run/Cancel state, and keeping the garbage collector out of the viewer."""


class RunControls:
    """Mixin for docks with ``run_button``, ``cancel_button`` and a ``status`` label."""

    def _set_running(self, running: bool):
        self.run_button.enabled = not running
        self.cancel_button.enabled = running

    def _error(self, exc):
        """End the run and say what went wrong, once, in the dock and as a viewer notification."""
        from napari.utils.notifications import show_error

        self._set_running(False)
        message = failure_message(exc)
        self.status.value = f"error: {message}"
        show_error(message)


def dock_worker(func, *args, **kwargs):
    """A thread worker (not started) running ``func(*args, **kwargs)`` whose failures only the dock reports
    (:meth:`RunControls._error`): napari's own workers also relay every error to the viewer, which showed
    each failure twice, and re-raise it in the main thread (a traceback in the terminal)."""
    from superqt.utils import create_worker

    return create_worker(func, *args, _start_thread=False, _ignore_errors=True, **kwargs)


def failure_message(exc: BaseException) -> str:
    """One line for the user: what failed and what to do (an exception of ours already says both)."""
    if isinstance(exc, MemoryError):
        return ("out of memory: close other programs, segment a smaller image or a crop of it, or lower the "
                "fine-tuning crop; the previous results and model are unchanged")
    from ..errors import SemiconvError

    if isinstance(exc, SemiconvError):
        return str(exc)
    return f"{type(exc).__name__}: {exc} (an unexpected failure: please report it with the image's size and type)"


def freeze_long_lived_objects() -> None:
    """Move the objects alive now (napari, torch, the model) out of the garbage collector's reach, once.

    Python's full collection walks every tracked object; with napari and torch loaded that took 208 ms
    here and, landing in the main thread after a segmentation, froze the viewer. ``gc.freeze`` leaves
    those long-lived objects out of later collections (objects made afterwards are collected as usual).
    """
    import gc

    if gc.get_freeze_count() == 0:
        gc.freeze()
