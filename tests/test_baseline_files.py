"""A Mask R-CNN baseline file where torchvision is absent (the plugin's own venv): a clear SemiconvError."""

import importlib.util

import numpy as np
import pytest
import torch

from napari_semiconv import SemiconvError
from napari_semiconv.baselines.adapter import FORMAT, is_baseline_file
from napari_semiconv.cli import main
from napari_semiconv.registry import resolve_model

pytestmark = pytest.mark.skipif(importlib.util.find_spec("torchvision") is not None,
                                reason="torchvision is installed: baseline files load here (tests/test_baselines.py)")


@pytest.fixture
def baseline_file(tmp_path):
    """A file as baselines.io writes one (format header, version, config, weights, metadata)."""
    path = tmp_path / "maskrcnn.pt"
    torch.save({"format": FORMAT, "version": "0", "config": {"input": "brightfield", "semiconv": None},
                "state_dict": {"backbone.body.conv1.weight": torch.zeros(64, 1, 7, 7)}, "metadata": {}}, path)
    return path


def test_baseline_file_without_torchvision_says_what_to_install(baseline_file):
    assert is_baseline_file(baseline_file)
    with pytest.raises(SemiconvError) as err:
        resolve_model(str(baseline_file), "cpu", baselines=True)
    message = str(err.value)
    assert str(baseline_file) in message and "Mask R-CNN baseline" in message and FORMAT in message
    assert 'pip install "napari-semiconv[baselines]"' in message
    assert "torch==2.14.1" in message and "torchvision==0.29.1" in message


def test_cli_segment_with_a_baseline_file_without_torchvision_is_one_line(baseline_file, tmp_path, capsys):
    import tifffile

    tifffile.imwrite(tmp_path / "image.tif", np.random.default_rng(0).random((64, 64)).astype(np.float32))
    out = tmp_path / "out"
    assert main(["segment", str(tmp_path / "image.tif"), "--out", str(out), "--model", str(baseline_file)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("napari-semiconv: error:") and "napari-semiconv[baselines]" in err[0]
    assert not out.exists()
