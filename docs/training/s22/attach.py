"""Put a refiner trained by refine_count.py (a state dict) on the shipped model: usage attach.py REFINER.pt OUT.pt NOTE"""
import sys

import torch

from napari_semiconv.model import load_model
from napari_semiconv.model.io import save_model
from napari_semiconv.model.widen import with_count_refiner
from napari_semiconv.models import DEFAULT_MODEL

model = with_count_refiner(load_model(DEFAULT_MODEL))
model.count_refiner.load_state_dict(torch.load(sys.argv[1], weights_only=True))
model.metadata.pop("path", None)
save_model(model.eval(), sys.argv[2], {**model.metadata, "count_refiner": {"trained_by": sys.argv[3]}})
