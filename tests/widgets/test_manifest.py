"""The plugin as napari loads it: through the npe2 manifest (napari.yaml), not by importing classes."""

import pytest

DOCKS = ["Segment worms", "Inspect embedding", "Fine-tune", "Worm measurements"]


@pytest.mark.parametrize("name", DOCKS)
def test_manifest_docks_load_in_a_viewer(make_napari_viewer, name):
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-semiconv", name)
    assert type(widget).__module__.startswith("napari_semiconv._widgets.")


def test_manifest_sample_data_opens_with_ground_truth(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-semiconv", "worms_brightfield")
    names = [layer.name for layer in viewer.layers]
    assert names == ["worms brightfield", "worms brightfield ground truth"]
    assert viewer.layers[0].data.shape == (520, 696) and viewer.layers[1].data.max() >= 10
