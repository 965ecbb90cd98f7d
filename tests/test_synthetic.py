import numpy as np
import pytest

from napari_semiconv.data.synthetic import FIELD, SceneConfig, make_scene


def test_deterministic_and_shaped():
    a, b = make_scene(123), make_scene(123)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.instances, b.instances)
    assert a.image.shape == FIELD and a.instances.shape[1:] == FIELD and a.labels.dtype == np.uint16
    assert not np.array_equal(a.image, make_scene(124).image)


@pytest.mark.parametrize("style", ["brightfield", "fluorescence"])
def test_styles_contrast(style):
    scene = make_scene(5, SceneConfig(style=style, worms=(15, 15)))
    img = scene.image.astype(float)
    fg = scene.instances.any(0)
    assert 5 <= len(scene.instances) <= 15
    if style == "brightfield":
        assert np.median(img[fg]) < np.median(img[~fg])  # dark worms
    else:
        assert np.median(img[fg]) > np.median(img[~fg])  # bright worms


def test_worm_geometry_and_overlaps():
    scenes = [make_scene(s, SceneConfig(worms=(25, 30))) for s in range(3)]
    areas = np.concatenate([s.instances.sum((1, 2)) for s in scenes])
    # half-width 6-10 px, length 150-300 px: a whole worm covers roughly 1,500-6,000 px
    assert np.median(areas) > 1000 and areas.max() < 8000
    assert any((s.instances.sum(0) > 1).any() for s in scenes)  # crossing worms exist
    for s in scenes:  # the label image shows the top worm where they cross
        top = s.labels[s.instances.sum(0) > 1]
        assert top.min() > 0


def test_window_matches_field():
    full = make_scene(9, SceneConfig(style="fluorescence", dtypes=("float32",)))
    crop = make_scene(9, SceneConfig(style="fluorescence", dtypes=("float32",)), window=(100, 200, 128, 160))
    assert crop.image.shape == (128, 160)
    fg_full = full.instances.any(0)[100:228, 200:360]
    assert np.array_equal(crop.instances.any(0), fg_full)


@pytest.mark.parametrize("dead", [False, True])
def test_magnified_worms_bend_as_often_per_body_length(dead):
    """A worm magnified 2x is the same shape, twice as big: the heading turns as much along its whole body
    (and its first half), not twice as much (a generator that kept the bends' wavelength in pixels drew 2x worms
    coiled twice as tightly)."""
    from napari_semiconv.data.synthetic import _centreline

    def turning(scale):  # total |heading change| along the body, and along its first half, per worm
        totals = []
        for seed in range(300):
            pts = _centreline(np.random.default_rng(seed), 200 * scale, dead, (0.0, 0.0), 0.0, scale)
            step = np.diff(pts, axis=0)
            heading = np.unwrap(np.arctan2(step[:, 0], step[:, 1]))
            bends = np.abs(np.diff(heading))
            totals.append((bends.sum(), bends[: len(bends) // 2].sum()))
        return np.mean(totals, 0)

    one, two = turning(1.0), turning(2.0)
    assert np.allclose(two, one, rtol=0.15), (one, two)


def test_bends_change_only_the_worms_shapes():
    """``SceneConfig.bends`` is drawn from a stream of its own: at (1, 1) a scene is the same bytes as by default
    (training and test scenes stay as they were); at 2 the worms take other shapes."""
    plain, same = make_scene(31), make_scene(31, SceneConfig(bends=(1.0, 1.0)))
    curly = make_scene(31, SceneConfig(bends=(2.0, 2.0)))
    assert np.array_equal(plain.image, same.image) and np.array_equal(plain.instances, same.instances)
    assert not np.array_equal(curly.instances.any(0), plain.instances.any(0))
