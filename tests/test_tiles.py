"""Mosaics larger than a tile: per-tile decoding, worms kept once, sparse instances."""

import numpy as np
import pytest

from napari_semiconv.data.sources import TEST_SEED0
from napari_semiconv.data.synthetic import SceneConfig, make_scene
from napari_semiconv.instances import Instances
from napari_semiconv.measure import measure_worms
from napari_semiconv.metrics import iou_matrix, s_score
from napari_semiconv.normalize import normalize
from napari_semiconv.segment import SegmentConfig, Worms, segment


def test_instances_round_trip_and_centroids(rng):
    stack = rng.random((3, 20, 30)) > 0.9
    stack[2] = False
    inst = Instances.from_stack(stack[:, 2:, 3:], offset=(2, 3), shape=(20, 30))
    assert len(inst) == 3 and inst.crops[2].size == 0
    full = np.zeros_like(stack)
    full[:, 2:, 3:] = stack[:, 2:, 3:]
    assert np.array_equal(inst.to_stack(), full) and np.array_equal(inst.mask(1), full[1])
    want = np.argwhere(full[0]).mean(0)
    assert np.allclose(inst.centroids()[0], want) and np.isnan(inst.centroids()[2]).all()


def _worms(stack, scores):
    inst = Instances.from_stack(stack)
    return Worms(inst, inst, np.asarray(scores, np.float32), np.zeros((len(stack), 2), np.int64))


def test_joining_tiles_keeps_the_better_scored_of_two_twins_and_every_other_worm():
    plane = np.zeros((4, 40, 60), bool)
    plane[0, 10:16, 5:45] = True  # a worm two tiles both decoded...
    plane[1, 10:16, 5:40] = True  # ...the second tile cut short (IoU 0.875)
    plane[2, 25:31, 5:45] = True  # another worm, in the first tile only
    plane[3, 12:30, 20:26] = True  # overlaps worm 0 a little (IoU < 0.5): not a twin
    for first, second, winner in ((0.9, 0.5, 0), (0.4, 0.8, 1)):
        joined = Worms.join([_worms(plane[[0, 2]], [first, 0.7]), _worms(plane[[1, 3]], [second, 0.6])], (40, 60))
        got = joined.instances.to_stack()
        assert len(got) == 3 and sorted(joined.scores.tolist()) == pytest.approx(sorted([max(first, second), 0.7, 0.6]))
        for want in (plane[winner], plane[2], plane[3]):
            assert any(np.array_equal(g, want) for g in got)


def test_tiled_mosaic_matches_whole_plane(shipped):
    scenes = [make_scene(TEST_SEED0 + 777 + i, SceneConfig(style="brightfield")) for i in range(2)]
    # scenes come in random dtypes and ranges: normalize each half so the mosaic is one microscope
    mosaic = np.concatenate([normalize(s.image) for s in scenes], axis=1)  # 520 x 1392
    left, right = (s.instances for s in scenes)
    truth = np.concatenate([np.concatenate([left, np.zeros_like(left)], 2),
                            np.concatenate([np.zeros_like(right), right], 2)])  # (N, 520, 1392)
    whole = segment(shipped, mosaic, SegmentConfig(tile=2048, keep_embedding=False))
    tiled = segment(shipped, mosaic, SegmentConfig(tile=640, tile_overlap=384, keep_embedding=False))
    assert tiled.labels.shape == mosaic.shape and tiled.displacement.shape == (2, *mosaic.shape)
    assert tiled.embedding is None and len(tiled.instances) == len(tiled.scores) == tiled.labels.max()
    a, b = tiled.instances.to_stack(), whole.instances.to_stack()
    # no worm kept twice by neighbouring tiles: tiling adds no pair of near-identical worms (the whole
    # plane may have some: two worms lying along each other overlap in the instance stack)
    assert _twins(a) <= _twins(b)
    # the greedy seeded decoder may pick other seeds in a tile, so the two need not agree worm for
    # worm, but they find as many worms and as many right ones
    assert s_score(a, b, 0.5) > 0.6 and abs(len(a) - len(b)) <= 0.2 * len(b)
    assert abs(s_score(a, truth, 0.5) - s_score(b, truth, 0.5)) < 0.1
    table = measure_worms(tiled.instances, mosaic, tiled.scores)
    assert len(table["area"]) == len(tiled.scores) and (table["area"] >= 60).all()


def test_impossible_tiling_is_rejected():
    from napari_semiconv import SemiconvError

    with pytest.raises(SemiconvError, match="cannot cover a plane"):
        SegmentConfig(tile=300, tile_overlap=384)


def test_tile_cores_partition_the_plane():
    from napari_semiconv.segment import _tiles

    for h, w, tile, overlap in ((1100, 1100, 1024, 384), (2500, 700, 640, 200), (520, 1392, 640, 384)):
        owner = np.zeros((h, w), int)
        for t in _tiles(h, w, SegmentConfig(tile=tile, tile_overlap=overlap)):
            owner[t.dst] += 1
            assert t.rows.start + t.core[0].start == t.dst[0].start and t.cols.stop <= w
        assert (owner == 1).all()


def test_tiled_1100_px_plane_keeps_each_worm_once(shipped):
    scenes = [make_scene(TEST_SEED0 + 790 + i, SceneConfig(style="brightfield")) for i in range(4)]
    top = np.concatenate([normalize(s.image) for s in scenes[:2]], axis=1)
    bottom = np.concatenate([normalize(s.image) for s in scenes[2:]], axis=1)
    plane = np.concatenate([top, bottom])[:1100, :1100]
    tiled = segment(shipped, plane, SegmentConfig(keep_embedding=False))  # 1024 px tiles, 384 px overlap
    whole = segment(shipped, plane, SegmentConfig(tile=2048, keep_embedding=False))
    stack, once = tiled.instances.to_stack(), whole.instances.to_stack()
    # worms kept twice by neighbouring tiles would add to the count; each tile is decoded on its own
    # context, so the two agree on most worms, not all
    assert len(stack) >= 20 and abs(len(stack) - len(once)) <= 0.15 * len(once) and s_score(stack, once, 0.5) > 0.6


def _twins(stack: np.ndarray) -> int:
    """Pairs of masks of an ``(N, H, W)`` bool stack with IoU > 0.5."""
    iou = iou_matrix(stack, stack)
    np.fill_diagonal(iou, 0)
    return int((iou > 0.5).sum()) // 2


def test_a_plane_of_3x3_tiles_streamed_to_tiled_tiffs_matches_the_in_memory_path(shipped, tmp_path):
    import tifffile

    from napari_semiconv.batch import segment_files
    from napari_semiconv.segment import _tiles

    image = make_scene(TEST_SEED0 + 820, SceneConfig(style="brightfield", worms=(24, 24), length=(100, 140)),
                       window=(0, 0, 640, 640)).image
    (tmp_path / "in").mkdir()
    tifffile.imwrite(tmp_path / "in" / "plate.tif", image)  # uncompressed: memory-mapped, read tile by tile
    config = SegmentConfig(tile=320, tile_overlap=160, keep_embedding=False)  # worms <= 140 px < the overlap
    tiles = _tiles(640, 640, config)
    assert len(tiles) == 9
    segment_files([tmp_path / "in"], tmp_path / "out", shipped, config, quiet=True)
    whole = segment(shipped, image, config)  # in memory, the same tiling
    with tifffile.TiffFile(tmp_path / "out" / "plate_labels.tif") as tif:
        assert tif.pages[0].is_tiled
        labels = tif.asarray()
    assert labels.shape == (640, 640) and np.array_equal(labels, whole.labels)
    stack = whole.instances.to_stack()
    assert np.array_equal(tifffile.imread(tmp_path / "out" / "plate_instances.tif") > 0, stack)
    crossing = [m for m in stack if sum(m[t.dst].any() for t in tiles) > 1]
    assert len(crossing) >= 3  # worms across tile borders ...
    # ... each one instance, kept by one tile (the tile whose core holds its centroid): no two worms kept by
    # different tiles are one worm twice (two worms of one tile may share pixels: a crossing, or, in this scene,
    # two false worms on the dark well rim in its corner)
    centres = np.array([np.argwhere(m).mean(0) for m in stack])
    tile = np.array([next(k for k, t in enumerate(tiles) if t.dst[0].start <= r < t.dst[0].stop
                          and t.dst[1].start <= c < t.dst[1].stop) for r, c in centres])
    iou = iou_matrix(stack, stack)
    assert len(set(tile)) > 1 and iou[tile[:, None] != tile[None]].max() < 0.5


def test_streamed_percentiles_are_numpys_bit_for_bit(rng, monkeypatch):
    from napari_semiconv import planes

    monkeypatch.setattr(planes, "BAND_PIXELS", 1000)  # many bands
    for image in (rng.normal(size=(97, 61)).astype(np.float32) * 1e-3, rng.integers(0, 9, (40, 300)).astype(np.uint8),
                  rng.integers(-5000, 5000, (123, 77)), np.full((16, 16), 7.0)):
        want = np.percentile(image.astype(np.float32), [1.0, 99.8])
        assert planes.percentiles(image) == list(want)
        assert np.array_equal(planes.NormalizedPlane(image)[:, :], normalize(image))
