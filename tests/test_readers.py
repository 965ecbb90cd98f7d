import numpy as np
import pytest
import tifffile

from napari_semiconv import SemiconvError
from napari_semiconv.data.readers import read_bbbc010, read_folder


def _write_folder(root, n=2, stack=False):
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(n):
        img = np.random.default_rng(i).integers(0, 4000, (40, 50)).astype(np.uint16)
        lab = np.zeros((40, 50), np.uint16)
        lab[5:15, 5:30] = 1
        lab[20:30, 10:40] = 2
        tifffile.imwrite(root / "images" / f"im{i}.tif", img)
        mask = np.stack([lab == 1, lab == 2]).astype(np.uint8) if stack else lab
        tifffile.imwrite(root / "masks" / f"im{i}_masks.tif", mask)


@pytest.mark.parametrize("stack", [False, True])
def test_folder(tmp_path, stack):
    _write_folder(tmp_path, stack=stack)
    items = read_folder(tmp_path)
    assert [a.name for a in items] == ["im0", "im1"]
    assert items[0].instances.shape == (2, 40, 50) and items[0].image.dtype == np.uint16


def test_folder_errors(tmp_path):
    with pytest.raises(SemiconvError, match="images/ and masks/"):
        read_folder(tmp_path)
    _write_folder(tmp_path)
    tifffile.imwrite(tmp_path / "masks" / "ghost.tif", np.zeros((40, 50), np.uint8))
    with pytest.raises(SemiconvError, match="masks without an image"):
        read_folder(tmp_path)
    (tmp_path / "masks" / "ghost.tif").unlink()
    tifffile.imwrite(tmp_path / "masks" / "im1_masks.tif", np.zeros((30, 50), np.uint8))
    with pytest.raises(SemiconvError, match="does not match"):
        read_folder(tmp_path)
    (tmp_path / "masks" / "im1_masks.tif").unlink()
    with pytest.raises(SemiconvError, match="has no mask"):
        read_folder(tmp_path)


def _write_bbbc010(root, wells=("A01", "C01", "C05")):
    import imageio.v3 as iio

    (root / "BBBC010_v2_images").mkdir(parents=True)
    (root / "BBBC010_v1_foreground_eachworm").mkdir()
    for well in wells:
        for w in (1, 2):
            tifffile.imwrite(root / "BBBC010_v2_images" / f"1649_1109_0003_Amp5-1_B_20070424_{well}_w{w}_ABC.tif",
                             np.full((30, 40), 100 * w, np.uint16))
        for k in range(2):
            m = np.zeros((30, 40), np.uint8)
            m[5 + 10 * k : 12 + 10 * k, 5:35] = 255
            iio.imwrite(root / "BBBC010_v1_foreground_eachworm" / f"{well}_{k + 1:02d}_ground_truth.png", m)


def test_bbbc010_layout_and_split(tmp_path):
    _write_bbbc010(tmp_path)
    train = read_bbbc010(tmp_path, "train")
    test = read_bbbc010(tmp_path, "test", channel=2)
    assert [a.name for a in train] == ["A01", "C01"] and [a.name for a in test] == ["C05"]
    assert train[0].instances.shape == (2, 30, 40) and test[0].image.max() == 200


def test_bbbc010_errors(tmp_path):
    with pytest.raises(SemiconvError, match="not a BBBC010 folder"):
        read_bbbc010(tmp_path)
    _write_bbbc010(tmp_path)
    for f in (tmp_path / "BBBC010_v2_images").glob("*_w2_*"):
        f.unlink()
    with pytest.raises(SemiconvError, match="no channel w2"):
        read_bbbc010(tmp_path, channel=2)
    for f in (tmp_path / "BBBC010_v2_images").glob("*_A01_*"):
        f.unlink()
    with pytest.raises(SemiconvError, match="without a w1 image"):
        read_bbbc010(tmp_path)


def test_tiff_stacks_open_lazily_plane_by_plane(tmp_path):
    from napari_semiconv.data.readers import LazyPlanes, open_image

    stack = np.random.default_rng(0).integers(0, 4000, (3, 40, 50)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "plain.tif", stack)
    tifffile.imwrite(tmp_path / "zlib.tif", stack, compression="zlib", tile=(16, 16))
    plain, packed = open_image(tmp_path / "plain.tif"), open_image(tmp_path / "zlib.tif")
    assert isinstance(plain, LazyPlanes) and isinstance(packed, LazyPlanes)  # nothing read yet
    for image in (plain, packed):
        assert image.shape == (3, 40, 50) and np.array_equal(image[1][5:9, 7:30], stack[1, 5:9, 7:30])
        assert np.array_equal(np.asarray(image[2]), stack[2])


def _ome_zarr(path, data, version):
    """An OME-Zarr image of ``data`` (..., H, W) with a half-resolution level beside it."""
    zarr = pytest.importorskip("zarr")
    group = zarr.open_group(path, mode="w", zarr_format=2 if version == "0.4" else 3)
    group.create_array("0", data=data, chunks=(1,) * (data.ndim - 2) + (16, 16))
    group.create_array("1", data=data[..., ::2, ::2])
    multiscales = [{"version": version, "datasets": [{"path": "0"}, {"path": "1"}]}]
    if version == "0.4":
        group.attrs["multiscales"] = multiscales
    else:
        group.attrs["ome"] = {"version": version, "multiscales": multiscales}


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_ome_zarr_planes_come_from_the_full_resolution_with_leading_axes_flattened(tmp_path, version):
    from napari_semiconv.data.readers import list_images, open_image

    data = np.random.default_rng(1).integers(0, 4000, (2, 3, 40, 50)).astype(np.uint16)  # (T, C, H, W)
    _ome_zarr(tmp_path / "plate.ome.zarr", data, version)
    assert list_images([tmp_path]) == [tmp_path / "plate.ome.zarr"]  # one image, not a folder of them
    image = open_image(tmp_path / "plate.ome.zarr")
    assert image.shape == (6, 40, 50) and np.array_equal(image[4][3:20, 10:11], data[1, 1, 3:20, 10:11])
    _ome_zarr(tmp_path / "one.zarr", data[:1, :1], version)
    assert open_image(tmp_path / "one.zarr").shape == (40, 50)


def test_a_3_plane_tiff_and_an_ome_zarr_segment_plane_by_plane(tmp_path, shipped):
    from napari_semiconv.batch import segment_files
    from napari_semiconv.data.sources import TEST_SEED0
    from napari_semiconv.data.synthetic import SceneConfig, make_scene
    from napari_semiconv.segment import SegmentConfig, segment

    scenes = np.stack([make_scene(TEST_SEED0 + 400 + i, SceneConfig(style="brightfield", worms=(6, 6)),
                                  window=(0, 0, 128, 160)).image.astype(np.float32) for i in range(3)])
    (tmp_path / "in").mkdir()
    tifffile.imwrite(tmp_path / "in" / "stack.tif", scenes, compression="zlib")
    _ome_zarr(tmp_path / "in" / "plate.ome.zarr", scenes[:2, None], "0.5")  # (T, C, H, W)
    config = SegmentConfig(keep_embedding=False)
    counts = segment_files([tmp_path / "in"], tmp_path / "out", shipped, config, quiet=True)
    want = [segment(shipped, plane, config) for plane in scenes]
    assert counts == [sum(len(r.scores) for r in want[:2]), sum(len(r.scores) for r in want)]
    for stem, n in (("plate.ome", 2), ("stack", 3)):
        labels = tifffile.imread(tmp_path / "out" / f"{stem}_labels.tif")
        assert labels.shape == (n, 128, 160)
        assert all(np.array_equal(labels[t], want[t].labels) for t in range(n))
        planes = np.loadtxt(tmp_path / "out" / f"{stem}_instances.csv", delimiter=",", skiprows=1, usecols=0)
        assert np.array_equal(np.bincount(planes.astype(int), minlength=n), [len(r.scores) for r in want[:n]])
