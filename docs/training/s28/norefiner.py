"""The shipped model less its count refiner (the same weights, its metadata kept), to train on as train_default.py
--init: the refiner costs a 2-thread training step about as much as the rest of the network and trains alone
afterwards (docs/training/s28/attach.py puts the shipped one back). usage: norefiner.py OUT.pt"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))
from fit_count_refiner import without_refiner

from napari_semiconv.model import load_model
from napari_semiconv.model.io import save_model
from napari_semiconv.models import DEFAULT_MODEL

shipped = load_model(DEFAULT_MODEL)
save_model(without_refiner(shipped), sys.argv[1], {k: v for k, v in shipped.metadata.items() if k != "path"})
