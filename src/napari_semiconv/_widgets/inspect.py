"""Inspect embedding dock: click a pixel -> its kernel affinity and the worm it would seed;
a plot of the embedding space linked to the worms layer."""

from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import Container, Label, PushButton, create_widget
from qtpy.QtWidgets import QWidget

from ..affinity import affinity_map, embedding_points, embedding_rgb, seeded_region
from .plots import MIN_PLOT_HEIGHT, plot_canvas, scrolling, tab_with_siblings, wrap_text
from .result_layers import META_KEY, follow_results, layer_results

if TYPE_CHECKING:
    import napari


class InspectWidget(QWidget):
    """Pick a segmented worms layer; click in the viewer; click a cluster in the plot."""

    def __init__(self, viewer: "napari.viewer.Viewer"):
        super().__init__()
        self.viewer = viewer
        self.worms = create_widget(annotation="napari.layers.Labels", label="worms layer")
        self.rgb_button = PushButton(text="Embedding RGB layer")
        self.status = Label(value="click a pixel of the image or the worms")
        self.controls = Container(widgets=[self.worms, self.rgb_button, self.status])
        wrap_text(self.status)
        self.figure, self.canvas = plot_canvas((4, 6.5), min_height=2 * MIN_PLOT_HEIGHT)
        self.ax_space, self.ax_app = self.figure.subplots(2, 1)
        scrolling(self, self.controls.native, self.canvas)
        tab_with_siblings(self)
        self.points = None
        self.plane = 0
        self._hooked = []
        self.worms.changed.connect(self._hook)
        self.rgb_button.changed.connect(self.show_rgb)
        self.canvas.mpl_connect("button_press_event", self._on_plot_click)
        follow_results(viewer, self.worms)
        self._hook(self.worms.value)

    # -- wiring ---------------------------------------------------------------------------
    def _results(self):
        return layer_results(self.worms.value)

    def _hook(self, layer):
        """Put our click callback on the worms layer and its image layer."""
        for lyr in self._hooked:
            if self._on_click in lyr.mouse_drag_callbacks:
                lyr.mouse_drag_callbacks.remove(self._on_click)
        self._hooked = []
        if layer is None or not self._results():
            return
        targets = [layer]
        image_name = layer.metadata[META_KEY].get("image")
        if image_name in self.viewer.layers:
            targets.append(self.viewer.layers[image_name])
        for lyr in targets:
            lyr.mouse_drag_callbacks.append(self._on_click)
            self._hooked.append(lyr)
        self.plot(None)

    def _on_click(self, layer, event):
        if event.type != "mouse_press":
            return
        coords = np.round(layer.world_to_data(event.position)).astype(int)
        plane = int(coords[0]) if len(coords) == 3 else 0
        self.inspect(int(coords[-2]), int(coords[-1]), plane)

    # -- actions --------------------------------------------------------------------------
    def inspect(self, row: int, col: int, plane: int = 0):
        """Show K_sigma((row, col), .) and the seeded worm for that pixel; mark it in the plot."""
        results = self._results()
        if not results:
            self.status.value = "segment an image first (Segment worms)"
            return None
        result = results[min(max(plane, 0), len(results) - 1)]
        if self._without_embedding(result):
            return None
        h, w = result.labels.shape
        if not (0 <= row < h and 0 <= col < w):
            self.status.value = f"({row}, {col}) is outside the image"
            return None
        self.plane = plane
        base = self.worms.value.name.removesuffix(" worms")
        aff = affinity_map(result, row, col)
        region = seeded_region(result, row, col).astype(np.uint8)
        scale = self.worms.value.scale[-2:]
        self._put_image(f"{base} affinity", aff, colormap="magma", blending="additive",
                        contrast_limits=(0, 1), opacity=0.8, scale=scale)
        seeded = self._put(f"{base} seeded worm", region, "labels", scale=scale)
        seeded.contour = 2
        label = int(result.labels[row, col])
        self.status.value = (f"pixel ({row}, {col}): worm {label or 'none'}, seeds {int(region.sum())} px, "
                             f"sigma {result.sigma:.3f}")
        self.plot(result, result.embedding[:, row, col])
        return aff

    def _without_embedding(self, result) -> bool:
        """True (and said in the status) where ``result`` has no embedding to inspect (a Mask R-CNN baseline)."""
        if result.embedding is not None:
            return False
        self.status.value = f"nothing to inspect: {result.absent or 'this result keeps no embedding'}"
        return True

    def _put(self, name, data, kind, **kwargs):
        if name in self.viewer.layers:
            self.viewer.layers[name].data = data
            return self.viewer.layers[name]
        # marked as the dock's own view, so that selecting it does not make it the dock's worms layer
        return getattr(self.viewer, f"add_{kind}")(data, name=name, metadata={META_KEY: {"view": True}}, **kwargs)

    def _put_image(self, name, data, **kwargs):
        return self._put(name, data, "image", **kwargs)

    def show_rgb(self, *_):
        """Add/update an RGB layer: Psi projected on 3 principal components."""
        results = self._results()
        if not results:
            self.status.value = "segment an image first (Segment worms)"
            return None
        result = results[min(self.plane, len(results) - 1)]
        if self._without_embedding(result):
            return None
        base = self.worms.value.name.removesuffix(" worms")
        return self._put_image(f"{base} embedding RGB", embedding_rgb(result), rgb=True,
                               scale=self.worms.value.scale[-2:])

    def plot(self, result=None, marked=None):
        """Scatter Psi's spatial dims and the PCA of its appearance dims, coloured by worm."""
        results = self._results()
        result = result or (results[min(self.plane, len(results) - 1)] if results else None)
        self.ax_space.clear()
        self.ax_app.clear()
        self.points = None
        if result is not None and result.embedding is not None:
            pts = embedding_points(result)
            self.points = pts
            colors = self.worms.value.colormap.map(pts["label"])
            colors[pts["label"] == 0] = (0.6, 0.6, 0.6, 0.4)
            self.ax_space.scatter(*pts["spatial"].T, c=colors, s=2)
            self.ax_space.invert_yaxis()
            self.ax_app.scatter(*pts["appearance"].T, c=colors, s=2)
            if marked is not None:
                xy = marked[:2] * result.coord_scale
                self.ax_space.plot(*xy, "k*", ms=14, mfc="yellow")
                app = pts["appearance"][np.argmin(np.abs(pts["spatial"] - xy).sum(1))]
                self.ax_app.plot(*app, "k*", ms=14, mfc="yellow")
        # wrapped: in a dock of napari's width the first title is wider than the figure
        self.ax_space.set_title("Psi spatial dims (px): where pixels vote", fontsize=8, wrap=True)
        self.ax_app.set_title("Psi appearance dims (PCA)", fontsize=8, wrap=True)
        self.canvas.draw_idle()

    def select_from_plot(self, axes_index: int, x: float, y: float) -> int:
        """Select (show only) the worm nearest to (x, y) in plot ``axes_index`` (0 spatial, 1
        appearance); returns its label (0 if none)."""
        if self.points is None or not len(self.points["label"]):
            return 0
        xy = self.points["spatial" if axes_index == 0 else "appearance"]
        label = int(self.points["label"][np.argmin(((xy - [x, y]) ** 2).sum(1))])
        layer = self.worms.value
        if label:
            layer.selected_label = label
            layer.show_selected_label = True
            self.status.value = f"selected worm {label} (toggle 'show selected' in the layer to see all)"
        return label

    def _on_plot_click(self, event):
        if event.inaxes is None or event.xdata is None:
            return
        self.select_from_plot(0 if event.inaxes is self.ax_space else 1, event.xdata, event.ydata)
