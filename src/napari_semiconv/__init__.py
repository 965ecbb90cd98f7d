"""napari-semiconv: semi-convolutional embeddings for worms and other look-alike objects.

The core (model, losses, decode, metrics, data, train, segment) imports neither Qt nor napari.
"""

__version__ = "0.1.0"

from .errors import SemiconvError

__all__ = ["SemiconvError", "__version__"]
