import numpy as np
import pytest

from napari_semiconv.measure import measure_worms


def _rod(length=120, half_width=5, shape=(60, 200)):
    m = np.zeros(shape, bool)
    m[30 - half_width : 30 + half_width + 1, 40 : 40 + length] = True
    return m


def _arc(radius=60, half_width=5, shape=(200, 200)):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    r = np.hypot(yy - 100, xx - 100)
    ang = np.arctan2(yy - 100, xx - 100)
    return (np.abs(r - radius) <= half_width) & (ang > 0) & (ang < np.pi)  # half circle


def test_straight_rod():
    t = measure_worms(_rod()[None], np.ones((60, 200)) * 3, np.array([0.7]))
    assert t["length"][0] == pytest.approx(120, rel=0.12)
    assert t["mean_width"][0] == pytest.approx(11, rel=0.15)
    assert t["straightness"][0] > 0.9
    assert t["curvature"][0] < 0.01
    assert t["mean_intensity"][0] == pytest.approx(3) and t["score"][0] == pytest.approx(0.7)
    assert t["area"][0] == 11 * 120


def test_arc_is_curved_and_less_straight():
    t = measure_worms(np.stack([_arc(), _arc(radius=40)]))
    assert t["length"][0] == pytest.approx(np.pi * 60, rel=0.12)
    assert t["straightness"][0] < 0.75
    assert t["curvature"][0] == pytest.approx(1 / 60, rel=0.5)
    assert t["curvature"][1] > t["curvature"][0]  # tighter arc, higher curvature
    assert list(t["label"]) == [1, 2]
