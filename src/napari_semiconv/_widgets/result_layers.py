"""Segmentation results as napari layers: building them (in a worker thread), adding them (a turn each),
edit detection, and the docks that follow the latest result."""

import hashlib
from typing import TYPE_CHECKING

import numpy as np

from ..errors import SemiconvError
from ..measure import measure_worms
from ..normalize import check_image
from ..segment import Progress, Result, SegmentConfig, segment_iter

if TYPE_CHECKING:
    import pandas as pd


META_KEY = "napari_semiconv"


def segment_planes(model, planes: np.ndarray, config: SegmentConfig):
    """Generator over a ``(T, H, W)`` stack: yields Progress and ``(t, Result, table)`` per plane."""
    for t, plane in enumerate(planes):
        yield Progress(f"plane {t + 1}/{len(planes)}", t, len(planes))
        for item in segment_iter(model, plane, config):
            if isinstance(item, Progress):
                yield item
            else:
                yield (t, item, measure_worms(item.instances, plane, item.scores))


def segment_to_layers(model, planes: np.ndarray, config: SegmentConfig, image_name: str, placement: dict,
                      **layer_options):
    """:func:`segment_planes`, then the result layers built in the calling (worker) thread: yields its Progress
    messages, then the dict of :func:`build_result_layers` (last)."""
    results, tables = [], []
    for item in segment_planes(model, planes, config):
        if isinstance(item, tuple):
            results.append(item[1])
            tables.append(item[2])
        else:
            yield item
    yield Progress("layers", 0, 1)
    yield build_result_layers(image_name, placement, results, tables, **layer_options)


def image_planes(layer) -> np.ndarray:
    """The layer's data as a ``(T, H, W)`` stack of checked planes; SemiconvError for RGB, >3-D data or a
    plane that cannot be segmented (:func:`..normalize.check_image`)."""
    if getattr(layer, "rgb", False):
        raise SemiconvError(f"'{layer.name}' is an RGB image: split its channels "
                            "(right-click the layer > Split RGB) and segment one of them")
    data = np.asarray(layer.data)
    if data.ndim not in (2, 3):
        raise SemiconvError(f"'{layer.name}' has {data.ndim} dimensions {data.shape}: segment a 2-D image "
                            "or a (T/Z, H, W) stack")
    planes = data[None] if data.ndim == 2 else data
    for t, plane in enumerate(planes):  # NaN, tiny, too big...: said here, before any work starts
        check_image(plane, name=f"'{layer.name}'" + (f" plane {t}" if len(planes) > 1 else ""))
    return planes


def checksum(data) -> str:
    return hashlib.sha1(np.ascontiguousarray(np.asarray(data)).view(np.uint8)).hexdigest()


def was_edited(layer) -> bool:
    """True if a layer we wrote has been changed by the user since."""
    written = layer.metadata.get(META_KEY, {}).get("checksum")
    return written is not None and written != checksum(layer.data)


def stack_planes(results: list[Result], field: str) -> np.ndarray:
    arrays = [getattr(r, field) for r in results]
    return arrays[0] if len(arrays) == 1 else np.stack(arrays)


def displacement_vectors(results: list[Result], stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Napari Vectors data ``(V, 2, D)`` on a ``stride`` grid over the foreground, and the worm id
    of each vector. Each arrow points from pixel u along Phi^g_u (pixels) to its worm's centre. Results
    without a displacement field (a Mask R-CNN baseline) give no vectors."""
    vecs, ids = [], []
    for t, r in enumerate(results):
        if r.displacement is None:
            continue
        h, w = r.labels.shape
        rr, cc = np.mgrid[stride // 2 : h : stride, stride // 2 : w : stride]
        keep = r.foreground[rr, cc] > 0.5
        rr, cc = rr[keep], cc[keep]
        pos = np.stack([rr, cc], 1).astype(np.float32)
        dirs = r.displacement[:, rr, cc].T
        if len(results) > 1:
            pos = np.concatenate([np.full((len(pos), 1), t, np.float32), pos], 1)
            dirs = np.concatenate([np.zeros((len(dirs), 1), np.float32), dirs], 1)
        vecs.append(np.stack([pos, dirs], 1))
        ids.append(r.labels[rr, cc].astype(np.int64))
    ndim = 3 if len(results) > 1 else 2
    data = np.concatenate(vecs) if vecs else np.zeros((0, 2, ndim), np.float32)
    return data, np.concatenate(ids) if ids else np.zeros(0, np.int64)


def features_table(tables: list[dict]) -> "pd.DataFrame":
    """One features table for a Labels layer: an ``index`` column = label id (plus plane)."""
    import pandas as pd

    frames = []
    for t, table in enumerate(tables):
        df = pd.DataFrame(table)
        if len(tables) > 1:
            df.insert(1, "plane", t)
        frames.append(df)
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if len(df):
        df.insert(0, "index", df["label"].to_numpy())
    return df


def build_result_layers(image_name: str, placement: dict, results: list[Result], tables: list[dict], *,
                        stride: int = 8, length: float = 1.0, suffix: str = "") -> dict:
    """The worms (Labels), displacement (Vectors) and foreground (Image) layers of ``results``, not yet in a
    viewer: {"worms": Labels, "displacement": Vectors, "foreground": Image}, named ``image_name + suffix ...``.

    Layer objects hold no Qt or GL state, so the docks build them in their worker thread: their construction
    (features table, vector meshes, thumbnails: ~150 ms here) then stays off the event loop. ``placement``
    holds the image layer's ``scale`` and ``translate``.
    """
    from napari.layers import Image, Labels, Vectors

    base = f"{image_name}{suffix}"
    labels = stack_planes(results, "labels")
    meta = {META_KEY: {"results": results, "image": image_name, "checksum": checksum(labels)}}
    worms = Labels(labels, name=f"{base} worms", features=features_table(tables), metadata=meta, **placement)
    vec, vec_ids = displacement_vectors(results, stride)
    colors = {"edge_color": _worm_colors(worms, vec_ids)} if len(vec_ids) else {}
    vectors = Vectors(vec, name=f"{base} displacement", features={"worm": vec_ids}, edge_width=1.0, length=length,
                      vector_style="arrow", **colors, **placement)
    vectors._max_vectors_thumbnail = 256  # napari redraws the thumbnail on the main thread when the layer is added
    foreground = Image(stack_planes(results, "foreground"), name=f"{base} foreground", visible=False,
                       colormap="viridis", contrast_limits=(0, 1), **placement)
    return {"worms": worms, "displacement": vectors, "foreground": foreground}


def layer_results(layer) -> list | None:
    """The per-plane segmentation Results a worms layer made by the Segment dock carries (None for others)."""
    return (getattr(layer, "metadata", None) or {}).get(META_KEY, {}).get("results") or None


def is_result_layer(layer) -> bool:
    """True for a worms (Labels) layer made by the Segment dock (it carries the results)."""
    return layer_results(layer) is not None


def follow_results(viewer, choice) -> None:
    """Keep a Labels ``choice`` widget on the most recent segmentation result, and on the Labels layer the
    user selects in the layer list (not the docks' own views, e.g. the seeded worm); the widget starts on
    the newest result layer."""
    def latest():
        return next((lyr for lyr in reversed(list(viewer.layers)) if is_result_layer(lyr)), None)

    def on_inserted(event):
        choice.reset_choices()
        if is_result_layer(event.value):
            choice.value = event.value

    def on_active(event):
        layer = viewer.layers.selection.active
        if layer is not None and layer in choice.choices and not layer.metadata.get(META_KEY, {}).get("view"):
            choice.value = layer

    viewer.layers.events.inserted.connect(on_inserted)
    viewer.layers.events.removed.connect(lambda e: choice.reset_choices())
    viewer.layers.selection.events.active.connect(on_active)
    choice.reset_choices()
    if latest() is not None:
        choice.value = latest()


def worm_count(layers: dict) -> int:
    """Number of worms over all planes in the layers of :func:`build_result_layers`."""
    return sum(len(r.scores) for r in layers["worms"].metadata[META_KEY]["results"])


def absent_note(layers: dict) -> str:
    """``" (...)"``: what the model behind the layers of :func:`build_result_layers` cannot give, or ``""``."""
    notes = {r.absent for r in layers["worms"].metadata[META_KEY]["results"] if r.absent}
    return f" ({'; '.join(sorted(notes))})" if notes else ""


def placement_of(layer) -> dict:
    """``scale`` and ``translate`` of ``layer``, for result layers laid over it."""
    return {"scale": layer.scale, "translate": layer.translate}


def result_layer_steps(viewer, new: dict, *, confirm=lambda question: True):
    """Generator that adds or updates the worms (Labels), displacement (Vectors) and foreground (Image)
    layers ``new`` (from :func:`build_result_layers`), yielding after each, then selects the worms layer;
    its return value is {"worms": layer, "displacement": layer, "foreground": layer}, the viewer's layers.

    Layers with the same names (a re-run) are updated in place; a worms layer the user edited is replaced
    only if ``confirm`` says so, else the new one is added beside it.
    """
    name = new["worms"].name
    worms = viewer.layers[name] if name in viewer.layers else None  # noqa: SIM401 (LayerList has no .get)
    if worms is not None and was_edited(worms) and not confirm(
            f"'{name}' was edited since it was segmented. Replace it with the new result?\n"
            "(No keeps your edits and adds the result as a new layer.)"):
        worms = None
    if worms is None:
        worms = viewer.add_layer(new["worms"])
    else:
        worms.data = new["worms"].data
        worms.features = new["worms"].features
        worms.metadata.update(new["worms"].metadata)
    yield
    vectors = new["displacement"]
    if vectors.name in viewer.layers:
        vl = viewer.layers[vectors.name]
        vl.data = vectors.data
        vl.features = vectors.features
        vl.length = vectors.length
    else:
        vl = viewer.add_layer(vectors)
    ids = vectors.features["worm"].to_numpy()
    if worms is not new["worms"] and len(ids):  # an existing worms layer: arrows in its colours
        vl.edge_color = _worm_colors(worms, ids)
    yield
    fname = new["foreground"].name
    if fname in viewer.layers:
        viewer.layers[fname].data = new["foreground"].data
    else:
        viewer.add_layer(new["foreground"])
    yield
    viewer.layers.selection.active = worms  # the worms, ready to correct, not the hidden foreground
    return {"worms": worms, "displacement": vl, "foreground": viewer.layers[fname]}


def show_results_in_turns(viewer, new: dict, *, on_done, on_error, confirm=lambda question: True) -> None:
    """:func:`result_layer_steps` one layer per Qt event-loop turn, then ``on_done(layers)``.

    napari's first Labels, Vectors and Image layers each cost 50-150 ms of setup here (2 CPU cores,
    software GL); done in one turn they blocked the viewer far longer, one per turn each stays shorter.
    An exception goes to ``on_error``.
    """
    from qtpy.QtCore import QTimer

    steps = result_layer_steps(viewer, new, confirm=confirm)

    def step():
        try:
            next(steps)
        except StopIteration as stop:
            on_done(stop.value)
        except Exception as exc:  # noqa: BLE001, reported to the user, the dock stays usable
            on_error(exc)
        else:
            QTimer.singleShot(10, step)  # a real timer, so paints and other timers run between steps

    step()


def _worm_colors(worms, ids: np.ndarray) -> np.ndarray:
    """RGBA ``(V, 4)`` per vector: its worm's colour in the Labels layer (grey for none)."""
    colors = np.asarray(worms.colormap.map(ids), float).reshape(len(ids), 4)
    colors[ids == 0] = (0.7, 0.7, 0.7, 1.0)
    colors[:, 3] = 1.0
    return colors
