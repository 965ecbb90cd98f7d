import numpy as np

from napari_semiconv._widgets.finetune import FinetuneWidget
from napari_semiconv.model import load_model
from napari_semiconv.models import DEFAULT_MODEL
from napari_semiconv.registry import Registry

from .conftest import dock, run_and_wait


def _dock(viewer):
    return dock(viewer, FinetuneWidget)


def test_finetune_cancel_then_finish(viewer_with_scene, qtbot):
    viewer, layer, scene = viewer_with_scene
    viewer.add_labels(scene.labels, name="corrected")
    widget = _dock(viewer)
    widget.labels.value = viewer.layers["corrected"]
    before = DEFAULT_MODEL.read_bytes()
    widget.steps.value = 400
    widget.seconds.value = 0
    worker = widget.run()
    qtbot.waitUntil(lambda: len(widget.losses) >= 2, timeout=60_000)
    with qtbot.waitSignal(worker.finished, timeout=60_000):
        widget.cancel()
    assert "cancelled" in widget.status.value and Registry().list() == []
    assert widget.model.source.value == "shipped default" and DEFAULT_MODEL.read_bytes() == before
    widget.steps.value = 4
    widget.name.value = "my worms"
    assert widget.part.value == "heads"  # the first run trained the heads alone, on cached features
    widget.part.value = "all"  # the second the whole network
    run_and_wait(qtbot, widget)
    entries = Registry().list()
    assert [e.name for e in entries] == ["my_worms"] and entries[0].metadata["steps"] == 4
    assert entries[0].metadata["train"] == "all"
    assert entries[0].metadata["images"] == ["field"] and load_model(entries[0].path).config
    assert widget.model.source.value == "my_worms"
    qtbot.waitUntil(lambda: "worms after fine-tuning" in widget.status.value, timeout=120_000)  # layers shown
    after = viewer.layers["field fine-tuned worms"]
    assert after.data.shape == layer.data.shape and after.data.max() > 0
    assert len(widget.losses) == 4


def test_finetune_refuses_bad_input(viewer_with_scene, qtbot):
    viewer, _layer, scene = viewer_with_scene
    viewer.add_labels(np.zeros_like(scene.labels), name="empty")
    viewer.add_labels(np.zeros((10, 10), np.uint16), name="small")
    viewer.add_labels(scene.labels, name="corrected")
    viewer.add_shapes([np.array([[0, 0], [0, 5], [5, 5], [5, 0]])], name="corner", shape_type="polygon")
    widget = _dock(viewer)
    for labels, region, expect in [("empty", "whole image", "no worm painted"), ("small", "whole image", "shape"),
                                   ("corrected", "corner", "inside the region")]:
        widget.labels.value = viewer.layers[labels]
        widget.controls.reset_choices()
        widget.region.value = region
        assert widget.run() is None, labels
        assert expect in widget.status.value, (labels, widget.status.value)
        assert widget.worker is None
    viewer.add_image(np.zeros((64, 64, 3), np.uint8), name="rgb", rgb=True)
    widget.controls.reset_choices()
    widget.image.value = viewer.layers["rgb"]
    assert widget.run() is None and "RGB" in widget.status.value
