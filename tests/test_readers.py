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
