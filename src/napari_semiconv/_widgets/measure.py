"""Worm measurements dock: the worms layer's ``features`` as a table, re-measure, export CSV."""

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import Container, FileEdit, Label, PushButton, Table, create_widget

from ..atomic import atomic_write
from ..errors import SemiconvError
from ..measure import measure_worms
from ..metrics import as_stack
from .result_layers import META_KEY, features_table, follow_results, layer_results

if TYPE_CHECKING:
    import napari


EMPTY = {"data": [], "index": [], "columns": []}


class MeasureWidget(Container):
    """Shows per-worm length, width, curvature, straightness, intensity; exports CSV."""

    def __init__(self, viewer: "napari.viewer.Viewer"):
        self.viewer = viewer
        self.worms = create_widget(annotation="napari.layers.Labels", label="worms layer")
        self.measure_button = PushButton(text="Measure (after editing labels)")
        self.table = Table(value=EMPTY)
        self.path = FileEdit(label="CSV file", mode="w", filter="*.csv")
        self.export_button = PushButton(text="Export CSV")
        self.status = Label(value="")
        super().__init__(widgets=[self.worms, self.measure_button, self.table, self.path,
                                  self.export_button, self.status])
        self.worms.changed.connect(self.refresh)
        self.measure_button.changed.connect(self.measure)
        self.export_button.changed.connect(self.export)
        follow_results(viewer, self.worms)
        self.refresh()

    def refresh(self, *_):
        """Show the layer's features table."""
        layer = self.worms.value
        df = layer.features if layer is not None else None
        self.table.value = EMPTY if df is None or not len(df) else df.drop(columns="index", errors="ignore").round(3).to_dict("list")

    def measure(self, *_):
        """(Re)measure the layer's labels (2-D) against its image and store them as features."""
        layer = self.worms.value
        if layer is None:
            self.status.value = "no Labels layer"
            return None
        labels = np.asarray(layer.data)
        if labels.ndim != 2:
            self.status.value = "measure works on 2-D labels; stacks are measured when segmented"
            return None
        image_name = layer.metadata.get(META_KEY, {}).get("image")
        image = self.viewer.layers[image_name].data if image_name in self.viewer.layers else None
        ids = np.unique(labels)
        ids = ids[ids > 0]
        table = measure_worms(as_stack(labels), image)
        table["label"] = ids
        table["score"], edited = self._kept_scores(layer, labels, ids)
        layer.features = features_table([table])
        self.refresh()
        self.status.value = (f"measured {len(ids)} worms" + (f"; edited since segmentation (no score): "
                             f"{', '.join(map(str, edited))}" if edited else ""))
        return layer.features

    @staticmethod
    def _kept_scores(layer, labels: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, list[int]]:
        """The model's score of each worm whose pixels are as segmented; NaN (and listed) for edited or new ones."""
        results = layer_results(layer)
        scores = np.full(len(ids), np.nan)
        if not results or results[0].labels.shape != labels.shape:
            return scores, [int(i) for i in ids]
        before = results[0].labels
        old = dict(zip(layer.features["label"], layer.features["score"])) if "score" in layer.features else {}
        edited = []
        for j, worm in enumerate(ids):  # loop over worms (each vectorised over its bounding box)
            rows, cols = np.nonzero((labels == worm) | (before == worm))
            box = (slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1))
            if worm in old and np.array_equal(labels[box] == worm, before[box] == worm):
                scores[j] = old[worm]
            else:
                edited.append(int(worm))
        return scores, edited

    def export(self, *_):
        """Write the table to the chosen CSV file."""
        layer = self.worms.value
        try:
            if layer is None or not len(layer.features):
                raise SemiconvError("nothing to export: segment or measure a worms layer first")
            path = Path(self.path.value)
            if path.is_dir() or not path.name:
                raise SemiconvError("choose a CSV file name to export to")
            table = layer.features.drop(columns="index", errors="ignore")
            atomic_write(path, lambda tmp: table.to_csv(tmp, index=False))
        except SemiconvError as exc:
            self.status.value = f"error: {exc}"
            return None
        self.status.value = f"wrote {path}"
        return path
