"""Segment worms dock: image -> worms (Labels), displacement (Vectors), foreground (Image).

Its model choice also takes a Mask R-CNN baseline file (worms and foreground; no displacement arrows).
"""

from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING

from magicgui.widgets import CheckBox, ComboBox, Container, FloatSpinBox, Label, PushButton, SpinBox, create_widget
from qtpy.QtWidgets import QWidget

from ..decode import DECODERS, DecodeConfig, model_decode_config, model_thresholds
from ..errors import SemiconvError
from ..registry import load_model_file
from ..segment import Progress, SegmentConfig
from .dialogs import ask_user
from .model_chooser import ModelChooser
from .plots import scrolling, tab_with_siblings, wrap_text
from .result_layers import (
    absent_note,
    image_planes,
    placement_of,
    segment_to_layers,
    show_results_in_turns,
    worm_count,
)
from .running import RunControls, dock_worker, freeze_long_lived_objects

if TYPE_CHECKING:
    import napari


class SegmentWidget(RunControls, QWidget):
    """Dock: choose image, model, decoder; Run in a thread with progress; Cancel.

    A Qt widget holding its ``controls`` in a scroll area, as the other docks do: napari docks a magicgui
    container's inner widget, leaving a ``scrollable=True`` container's scroll area outside the dock and
    still resizing that widget to its own, wider, viewport (624 px in a 359 px dock: the right edge cut)."""

    def __init__(self, viewer: "napari.viewer.Viewer"):
        super().__init__()
        self.viewer = viewer
        self.image = create_widget(annotation="napari.layers.Image", label="image")
        self.model = ModelChooser(loader=partial(load_model_file, baselines=True))
        self.decoder = ComboBox(label="decoder", choices=DECODERS, value="seeded")
        self.k = SpinBox(label="k (kmeans)", value=10, min=1, max=1000, visible=False)
        self.overlap = CheckBox(text="overlapping worms (instance stack)", value=True)
        self.binary = CheckBox(text="binary foreground input", value=False)
        defaults = DecodeConfig()
        self.fg_threshold = FloatSpinBox(label="foreground threshold", value=defaults.fg_threshold, min=0.05,
                                         max=0.95, step=0.05)
        self.kernel_threshold = FloatSpinBox(label="kernel threshold", value=defaults.kernel_threshold, min=0.05,
                                             max=0.95, step=0.05)
        self.merge_threshold = FloatSpinBox(label="merge threshold", value=defaults.merge_threshold,
                                            min=0.0, max=0.95, step=0.05)
        self.min_size = SpinBox(label="min worm size (px)", value=defaults.min_size, min=1, max=100000)
        self.min_score = FloatSpinBox(label="minimum score", value=defaults.min_score, min=0.0, max=0.95, step=0.05,
                                      tooltip="worms the model scores below this are dropped (split pieces and "
                                      "crossing leftovers score low); the model's own value is set when it is chosen")
        self.worm_width = FloatSpinBox(label="worm width (px)", value=0.0, min=0.0, max=500.0,
                                       step=1.0, tooltip="typical worm width (mean_width in Worm measurements) "
                                       "when your magnification differs from the model's training worms")
        self.stride = SpinBox(label="arrow stride (px)", value=8, min=2, max=128)
        self.length = FloatSpinBox(label="arrow length", value=1.0, min=0.05, max=5.0, step=0.05)
        self.run_button = PushButton(text="Segment")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.status = Label(value="")
        self.controls = Container(widgets=[self.image, *self.model.widgets, self.decoder, self.k, self.overlap,
                                           self.binary, self.fg_threshold, self.kernel_threshold,
                                           self.merge_threshold, self.min_size, self.min_score, self.worm_width, self.stride,
                                           self.length, self.run_button, self.cancel_button, self.status])
        # what 0 means, in the box (in the label it made the label column, and the dock, wider)
        self.merge_threshold.native.setSpecialValueText("off")
        self.min_score.native.setSpecialValueText("off")
        self.worm_width.native.setSpecialValueText("model's")
        wrap_text(self.status)
        scrolling(self, self.controls.native)
        tab_with_siblings(self)
        self.decoder.changed.connect(lambda v: setattr(self.k, "visible", v == "kmeans"))
        self.model.source.changed.connect(self.use_model_thresholds)
        self.model.file.changed.connect(self.use_model_thresholds)
        self.use_model_thresholds()
        self.run_button.changed.connect(self.run)
        self.cancel_button.changed.connect(self.cancel)
        self.confirm = lambda question: ask_user(self, question)
        self.worker = None
        self.cancelled = False
        self.layers: dict = {}

    def reset_choices(self, *_) -> None:
        """Refresh the layer and model choices (napari calls it when the layer list changes)."""
        self.controls.reset_choices()

    def use_model_thresholds(self, *_) -> None:
        """Set the threshold controls to the chosen model's own (chosen on its validation images or, for a
        fine-tuned model, on the user's labels); a model without them keeps the current values."""
        try:
            stored = model_thresholds(self.model.load())
        except (SemiconvError, OSError):  # no file chosen yet, or a bad one: said when Segment is pressed
            return
        for key, value in stored.items():
            getattr(self, key).value = value

    def config(self) -> SegmentConfig:
        """The settings of the controls, with the chosen model's instance rescorer, joiner and crossing painter where it
        has them (its score cut was chosen with them); raises SemiconvError when the chosen model file cannot be read."""
        dec = replace(model_decode_config(self.model.load()), name=self.decoder.value,
                      fg_threshold=self.fg_threshold.value, kernel_threshold=self.kernel_threshold.value,
                      min_size=self.min_size.value, merge_threshold=self.merge_threshold.value,
                      min_score=self.min_score.value, overlap=self.overlap.value, k=self.k.value)
        return SegmentConfig(decode=dec, binary=self.binary.value, worm_width=self.worm_width.value)

    def run(self, *_):
        """Start segmenting the chosen image in a worker thread; returns the worker (or None).

        The dock stays busy (Segment disabled) until the layers are shown, a layer per event-loop turn."""
        from napari.utils import progress

        layer = self.image.value
        try:
            if layer is None:
                raise SemiconvError("no image layer: open an image or File > Open Sample > napari-semiconv")
            planes = image_planes(layer)
            config = self.config()
            model = self.model.load()
        except SemiconvError as exc:
            return self._error(exc)
        freeze_long_lived_objects()
        built = {}
        bar = progress(total=len(planes), desc=f"segment {layer.name}")
        self.cancelled = False

        def on_yield(item):
            if self.cancelled:
                return
            if isinstance(item, Progress):
                self.status.value = f"{item.stage} {item.done}/{item.total}"
                if item.stage.startswith("plane"):
                    bar.n = item.done
                    bar.refresh()
            elif isinstance(item, dict):
                built.update(item)

        def on_done():
            bar.close()
            if self.cancelled:
                self.status.value = "cancelled"
            if self.cancelled or not built:  # a failure was reported by errored
                self._set_running(False)
                return
            self.status.value = "adding layers..."

            def shown(layers):
                self.layers = layers
                self._set_running(False)
                self.status.value = f"{worm_count(built)} worms in {layer.name}" + absent_note(built)

            show_results_in_turns(self.viewer, built, confirm=self.confirm, on_done=shown, on_error=self._error)

        self.worker = dock_worker(segment_to_layers, model, planes, config, layer.name, placement_of(layer),
                                  stride=self.stride.value, length=self.length.value)
        self.worker.yielded.connect(on_yield)
        self.worker.finished.connect(on_done)
        self.worker.errored.connect(self._error)
        self._set_running(True)
        self.worker.start()
        return self.worker

    def cancel(self, *_):
        if self.worker is not None:
            self.cancelled = True
            self.worker.quit()
            self.status.value = "cancelled"
