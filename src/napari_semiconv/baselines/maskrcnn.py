"""Mask R-CNN from torchvision, from scratch, on a light ResNet-FPN backbone; optionally semi-convolutional.

No pretrained weights (none can be downloaded here, and the paper's comparison is between two
models of one protocol): ``weights=None`` for the backbone and the detector. Choices for training
from scratch on a batch of two crops on a CPU:

- ResNet-18-FPN (``resnet_fpn_backbone``), every layer trainable, GroupNorm (32 groups) in place of
  torchvision's frozen BatchNorm (frozen statistics only make sense with pretrained weights);
- one input channel (the normalized grey image, or the binary foreground): the stem conv takes 1
  channel instead of a 3-channel copy;
- no resizing: images are used at their own pixel scale (torchvision's transform would scale them
  to ``min_size``), so worms keep the width the model learned and u_hat is in image pixels.
"""

from dataclasses import asdict, dataclass
from functools import partial

from torch import nn
from torchvision.models.detection import MaskRCNN
from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
from torchvision.models.detection.transform import GeneralizedRCNNTransform

from .semiconv import SemiConvConfig, SemiConvRoIHeads

INPUTS = ("brightfield", "binary")


@dataclass(frozen=True)
class BaselineConfig:
    """Architecture and input convention of a baseline; stored in its model file."""

    semiconv: SemiConvConfig | None = None  # None: plain Mask R-CNN
    backbone: str = "resnet18"  # a torchvision ResNet name
    groups: int = 32  # GroupNorm groups in the backbone
    input: str = "brightfield"  # "brightfield": normalized grey image; "binary": the foreground mask
    detections: int = 100  # most detections per image
    roi_samples: int = 128  # RoIs sampled per training image for the box branch (torchvision: 512), a quarter
    # of them positive at most: the mask branch costs about 0.5 GMAC per positive RoI
    score_threshold: float = 0.5  # detections below this score are dropped by predict (set on validation images)
    mask_threshold: float = 0.5  # a pixel is in the mask at sigmoid(s_hat) >= this

    def __post_init__(self):
        if self.input not in INPUTS:
            raise ValueError(f"unknown baseline input {self.input!r}: one of {', '.join(INPUTS)}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "BaselineConfig":
        semiconv = data.get("semiconv")
        return cls(**{**data, "semiconv": SemiConvConfig(**semiconv) if semiconv is not None else None})


class NativeScaleTransform(GeneralizedRCNNTransform):
    """torchvision's transform (normalize, batch with padding to a multiple of 32) without the resize."""

    def resize(self, image, target=None):
        return image, target


def _grey_stem(backbone) -> None:
    """Replace the ResNet stem of ``backbone`` (a BackboneWithFPN) by a 1-channel conv, initialized as ResNet's."""
    conv = nn.Conv2d(1, backbone.body.conv1.out_channels, 7, stride=2, padding=3, bias=False)
    nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
    backbone.body.conv1 = conv


def build_baseline(config: BaselineConfig = BaselineConfig()) -> MaskRCNN:
    """A torchvision ``MaskRCNN`` with 2 classes (background, worm), randomly initialized.

    It takes a list of ``(1, H, W)`` float32 images (:func:`~.targets.model_input`); ``model.config`` is
    ``config``. With ``config.semiconv`` its ``roi_heads`` are :class:`~.semiconv.SemiConvRoIHeads`.
    """
    backbone = resnet_fpn_backbone(backbone_name=config.backbone, weights=None, trainable_layers=5,
                                   norm_layer=partial(nn.GroupNorm, config.groups))
    _grey_stem(backbone)
    model = MaskRCNN(backbone, num_classes=2, box_detections_per_img=config.detections,
                     box_batch_size_per_image=config.roi_samples)
    model.transform = NativeScaleTransform(min_size=1, max_size=1, image_mean=[0.5], image_std=[0.5])
    if config.semiconv is not None:
        model.roi_heads = SemiConvRoIHeads(model.roi_heads, config.semiconv, backbone.out_channels)
    model.config = config
    return model
