"""Fine-tune dock: corrected labels -> a new model in the registry -> re-segmented image."""

import time
from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FloatSpinBox,
    Label,
    LineEdit,
    PushButton,
    SpinBox,
    create_widget,
)
from qtpy.QtWidgets import QWidget

from ..errors import SemiconvError
from ..finetune import FinetuneConfig, finetune_iter, finetune_metadata, finetune_summary
from ..registry import Registry
from ..segment import SegmentConfig
from ..train import TrainProgress
from .model_chooser import ModelChooser
from .plots import plot_canvas, scrolling, tab_with_siblings, wrap_text
from .result_layers import image_planes, placement_of, segment_to_layers, show_results_in_turns, worm_count
from .running import RunControls, dock_worker, freeze_long_lived_objects

if TYPE_CHECKING:
    import napari

WHOLE = "whole image"


class FinetuneWidget(RunControls, QWidget):
    """Choose image + corrected labels (+ region), budget; Run with a live loss curve; Cancel."""

    def __init__(self, viewer: "napari.viewer.Viewer"):
        super().__init__()
        self.viewer = viewer
        self.image = create_widget(annotation="napari.layers.Image", label="image")
        self.labels = create_widget(annotation="napari.layers.Labels", label="corrected labels")
        self.region = ComboBox(label="annotated region", choices=self._region_choices)
        self.model = ModelChooser(label="base model")
        self.steps = SpinBox(label="steps", value=150, min=1, max=100000)
        self.seconds = FloatSpinBox(label="time budget (s)", value=60.0, min=0, max=36000)
        self.seconds.native.setSpecialValueText("none")  # 0 means none (said in the label, it widened the dock)
        self.lr = FloatSpinBox(label="learning rate", value=FinetuneConfig.lr, min=1e-6, max=1e-1, step=1e-4)
        self.part = ComboBox(label="train", value=FinetuneConfig.train,
                             choices=[("whole network", "all"), ("heads (faster steps)", "heads")])
        self.augment = CheckBox(text="augment (flips, rotations, intensity, scale)", value=True)
        self.name = LineEdit(label="new model name", value="finetuned")
        self.run_button = PushButton(text="Fine-tune")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.status = Label(value="")
        self.controls = Container(widgets=[self.image, self.labels, self.region, *self.model.widgets, self.steps,
                                           self.seconds, self.lr, self.part, self.augment, self.name,
                                           self.run_button, self.cancel_button, self.status])
        wrap_text(self.status)
        self.figure, self.canvas = plot_canvas((4, 2.5))
        self.ax = self.figure.subplots()
        scrolling(self, self.controls.native, self.canvas)
        tab_with_siblings(self)
        self.run_button.changed.connect(self.run)
        self.cancel_button.changed.connect(self.cancel)
        for event in (viewer.layers.events.inserted, viewer.layers.events.removed):
            event.connect(lambda e: self.controls.reset_choices())
        self.controls.reset_choices()
        self.worker = None
        self.losses: list[float] = []
        self.saved = None  # registry Entry of the last finished run
        self.segment_worker = None

    def _region_choices(self, _widget=None):
        import napari

        layers = getattr(self, "viewer", None).layers if getattr(self, "viewer", None) else []
        return [WHOLE] + [lyr.name for lyr in layers if isinstance(lyr, (napari.layers.Shapes, napari.layers.Labels))
                          and lyr is not self.labels.value]

    def region_mask(self, shape) -> np.ndarray | None:
        """``(H, W)`` bool mask of the annotated region, None for the whole image."""
        import napari

        name = self.region.value
        if name in (None, WHOLE) or name not in self.viewer.layers:
            return None
        layer = self.viewer.layers[name]
        if isinstance(layer, napari.layers.Shapes):
            if not len(layer.data):
                raise SemiconvError(f"region layer '{name}' has no shapes: draw the annotated area")
            return np.asarray(layer.to_masks(mask_shape=shape)).any(0)
        data = np.asarray(layer.data)
        if data.shape != tuple(shape):
            raise SemiconvError(f"region layer '{name}' has shape {data.shape}, the image {tuple(shape)}")
        return data > 0

    def config(self) -> FinetuneConfig:
        return FinetuneConfig(steps=self.steps.value, seconds=self.seconds.value, lr=self.lr.value,
                              augment=self.augment.value, train=self.part.value)

    def run(self, *_):
        """Start fine-tuning in a worker; returns the worker (None if the input is refused)."""
        from napari.utils import progress

        try:
            img_layer, lab_layer = self.image.value, self.labels.value
            if img_layer is None or lab_layer is None:
                raise SemiconvError("choose an image layer and its corrected Labels layer")
            planes = image_planes(img_layer)
            labels = np.asarray(lab_layer.data)
            labels = labels[None] if labels.ndim == 2 else labels
            if labels.shape != planes.shape:
                raise SemiconvError(f"labels '{lab_layer.name}' have shape {labels.shape[-2:] if labels.ndim == 3 else labels.shape}"
                                    f" but the image {planes.shape[-2:]}: paint labels of the image's shape")
            region = self.region_mask(planes.shape[-2:])
            base = self.model.load()
            config = self.config()
            from ..finetune import check_annotations

            check_annotations(list(planes), list(labels), [region] * len(planes) if region is not None else None)
        except SemiconvError as exc:
            return self._error(exc)
        freeze_long_lived_objects()
        regions = [region] * len(planes) if region is not None else None
        self.losses = []
        state = {"model": None, "last": None, "cancelled": False, "t0": time.perf_counter()}
        bar = progress(total=config.steps, desc="fine-tune")

        def on_yield(item):
            if isinstance(item, TrainProgress):
                state["last"] = item
                bar.n = item.step
                bar.refresh()
                self.losses.append(item.losses["total"])
                self.status.value = f"step {item.step}/{item.total}  loss {item.losses['total']:.3f}"
                if item.step % 5 == 0 or item.step == item.total:
                    self._plot()
            elif item is not None:
                state["model"] = item

        def on_done():
            bar.close()
            self._set_running(False)
            if state["cancelled"] or state["model"] is None:
                self.status.value = "cancelled: the base model is unchanged, nothing saved"
                return
            meta = finetune_metadata(base, state["model"], config, state["last"], [img_layer.name])
            self.saved = Registry().add(state["model"], self.name.value, meta)
            self.model.refresh(select=self.saved.name)
            self._plot()
            self.status.value = f"saved '{self.saved.name}' ({self.saved.path}); re-segmenting..."
            self.resegment(state["model"], img_layer, planes)

        self.worker = dock_worker(finetune_iter, base, list(planes), list(labels), regions, config)
        self.worker.yielded.connect(on_yield)
        self.worker.finished.connect(on_done)
        self.worker.errored.connect(self._error)
        self._state = state
        self._set_running(True)
        self.worker.start()
        return self.worker

    def resegment(self, model, img_layer, planes):
        """Segment the image with the fine-tuned model into '<image> fine-tuned ...' layers."""
        built = {}

        def on_yield(item):
            if isinstance(item, dict):
                built.update(item)

        def on_done():
            if built:
                show_results_in_turns(self.viewer, built, on_done=shown, on_error=self._error)

        def shown(_layers):
            self.status.value = (f"'{self.saved.name}': {worm_count(built)} worms after fine-tuning. "
                                 + finetune_summary(self.saved.metadata))

        self.segment_worker = dock_worker(segment_to_layers, model, planes, SegmentConfig(), img_layer.name,
                                          placement_of(img_layer), suffix=" fine-tuned")
        self.segment_worker.yielded.connect(on_yield)
        self.segment_worker.finished.connect(on_done)
        self.segment_worker.errored.connect(self._error)
        self.segment_worker.start()
        return self.segment_worker

    def cancel(self, *_):
        if self.worker is not None and getattr(self, "_state", None) is not None:
            self._state["cancelled"] = True
            self.worker.quit()

    def _plot(self):
        self.ax.clear()
        self.ax.plot(np.arange(1, len(self.losses) + 1), self.losses)
        self.ax.set_xlabel("step")
        self.ax.set_ylabel("loss")
        self.ax.set_title("fine-tuning loss", fontsize=8)
        self.canvas.draw_idle()
