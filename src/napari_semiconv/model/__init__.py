"""Semi-convolutional network: U-Net backbone, heads, Psi = Phi + u_hat, model files."""

from .backbone import UNet
from .device import pick_device
from .embedding import ModelConfig, SemiConvNet, build_model
from .io import load_model, save_model

__all__ = ["ModelConfig", "SemiConvNet", "UNet", "build_model", "load_model", "pick_device", "save_model"]
