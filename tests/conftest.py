import numpy as np
import pytest
import torch

torch.set_num_threads(2)


@pytest.fixture(autouse=True)
def _registry_home(tmp_path, monkeypatch):
    """Every test gets its own empty model registry."""
    monkeypatch.setenv("NAPARI_SEMICONV_HOME", str(tmp_path / "semiconv-home"))


@pytest.fixture(scope="session")
def shipped():
    from napari_semiconv.model import load_model
    from napari_semiconv.models import DEFAULT_MODEL

    return load_model(DEFAULT_MODEL)


@pytest.fixture
def rng():
    return np.random.default_rng(0)
