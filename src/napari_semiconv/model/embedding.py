"""The semi-convolutional model: Psi_u = Phi_u + u_hat, plus foreground and seed heads.

Phi has ``dim`` channels; the first two are the displacement field Phi^g (in units of
``coord_scale`` pixels, x then y), the rest appearance traits Phi^a. u_hat is the pixel's own
coordinate divided by ``coord_scale`` in the first two dims and zero elsewhere.
"""

import copy
import math
from dataclasses import asdict, dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from .backbone import Refine, UNet
from .count_refiner import CountRefiner

TARGETS = ("eq5", "anchor", "flow")
FLOW_SIGMA_PX = 5.0  # flow models: the kernel bandwidth (px) round the end points where votes gather


@dataclass(frozen=True)
class ModelConfig:
    """Architecture and input conventions; stored in every model file."""

    dim: int = 8  # embedding size d (2 displacement + d-2 appearance dims)
    width: int = 16  # U-Net channels at full resolution
    depth: int = 5  # U-Net downsamplings (receptive field must span a worm)
    max_width: int = 128  # channel cap of the deepest levels
    coord_scale: float = 64.0  # pixels per unit of u_hat
    semiconv: bool = True  # False: Psi = Phi (the convolutional ablation)
    sigma_init: float = 0.5  # initial kernel bandwidth, in Psi units
    in_channels: int = 1
    downsample: int = 2  # the backbone runs at 1/downsample resolution; outputs are upsampled
    input_scale: float = 1.0  # image pixels per pixel of the training data: worms this many times wider
    # than those the model learned on (set by fine-tuning from the user's labels); the image is resized by
    # 1/input_scale for the backbone and Psi, sigma are scaled back, so the kernel is unchanged
    target: str = "eq5"  # what Psi is trained toward: "eq5" (the paper: the mean of the worm's own Psi, one
    # learned sigma) or "anchor" (a fixed point on the worm, bounded offsets, a bandwidth per pixel, a
    # full-resolution head counting worms per pixel) or "flow" (the local form: Phi^g is a unit flow along the
    # body toward the anchor, integrated at decode time, see napari_semiconv.flow; dim must be 2, with the same
    # count head). Files without this field are of the "eq5" kind.
    worm_width: float = 0.0  # median mean width (px) of the worms the model was trained on, at input scale 1,
    # recorded by training; 0 = not recorded (older files: the synthetic generator's worms are measured)
    offset_range: float = 256.0  # anchor: the largest displacement Phi^g can express, pixels (tanh bound)
    flow_steps: int = 250  # flow: Euler steps of one pixel that a vote follows the flow (half a long worm)
    sink_clearance: float = 0.0  # flow: px by which each worm's sink in the training target is kept clear of
    # overlaps (napari_semiconv.flow.flow_target; 0 = the worm's pixel nearest to its anchor, as the shipped model)
    refine: int = 0  # residual dilated blocks on the backbone's output (model.backbone.Refine; 0 = none, older files)
    flow_pair: bool = False  # flow: two flows per pixel, so that a pixel where two worms cross has each worm's
    # direction (a vote follows the one that continues its path; napari_semiconv.flow); False = one, older files
    flow_pieces: bool = False  # flow: each worm's overlaps cut it into pieces with a sink each (no vote crosses an
    # overlap) and the decoder joins the pieces across overlaps (napari_semiconv.joining); False = whole worms, older files
    count_refiner: bool = False  # flow: a small full-resolution net corrects the count head's 0 / 1 / 2+ logits from
    # the image, those logits and the flow (model.count_refiner); False = none, older files

    def __post_init__(self):
        if self.target not in TARGETS:
            raise ValueError(f"unknown model target {self.target!r}: one of {', '.join(TARGETS)}")
        if self.target == "flow" and self.dim != 2:
            raise ValueError(f"a flow model's embedding is its 2-D vote (dim 2), not dim {self.dim}")
        if (self.flow_pair or self.flow_pieces) and self.target != "flow":
            raise ValueError(f"paired flows and pieces are for flow models, not {self.target!r} ones")
        if self.count_refiner and self.target != "flow":
            raise ValueError(f"the count refiner reads a flow: it is for flow models, not {self.target!r} ones")

    @classmethod
    def for_target(cls, target: str, **kw) -> "ModelConfig":
        """The default configuration of a model of kind ``target`` (a flow model has dim 2)."""
        return cls(target=target, **({"dim": 2} if target == "flow" else {}), **kw)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Outputs:
    """Network outputs for a batch, all ``(B, C, H, W)`` float32."""

    fg_logit: torch.Tensor  # (B, 1, H, W) foreground logit
    seed_logit: torch.Tensor | None  # (B, 1, H, W) logit of K_sigma(Psi_u, instance centre); None for flow models
    phi: torch.Tensor  # (B, d, H, W) convolutional embedding Phi; flow models: (B, 2, H, W) the unit flow (dx, dy),
    # (B, 4, H, W) two of them with ModelConfig.flow_pair
    psi: torch.Tensor | None  # (B, d, H, W) semi-convolutional embedding Psi; None for flow models (their Psi is
    # the end point of the flow, found at decode time: napari_semiconv.flow.integrate)
    sigma: torch.Tensor | None = None  # anchor: (B, 1, H, W) kernel bandwidth per pixel, Psi units
    count_logit: torch.Tensor | None = None  # anchor: (B, 3, H, W) logits of 0, 1, 2+ worms at the pixel


def pixel_coordinates(height: int, width: int, dim: int, scale: float, *, origin=(0, 0),
                      device=None) -> torch.Tensor:
    """u_hat as a ``(dim, H, W)`` float32 tensor: (x, y) / scale in dims 0, 1, zeros after.

    ``origin`` = (row, col) of the first pixel in the whole image, so tiles share one frame.
    """
    ys = (torch.arange(height, device=device, dtype=torch.float32) + origin[0]) / scale
    xs = (torch.arange(width, device=device, dtype=torch.float32) + origin[1]) / scale
    grid = torch.zeros(dim, height, width, device=device)
    grid[0] = xs[None, :]
    grid[1] = ys[:, None]
    return grid


class SemiConvNet(nn.Module):
    """Backbone + 1x1 heads. ``forward(x)`` takes ``(B, 1, H, W)`` normalized images."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.backbone = UNet(config.in_channels, config.width, config.depth, config.max_width)
        c = self.backbone.out_channels
        if config.refine:
            self.refine = Refine(c, config.refine)
        kind = config.target
        if kind != "flow":
            self.seed_head = nn.Conv2d(c, 1, 1)
        self.phi_head = nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.ReLU(inplace=True),
                                      nn.Conv2d(c, config.dim + 2 * config.flow_pair, 1))
        sigma0 = FLOW_SIGMA_PX / config.coord_scale if kind == "flow" else config.sigma_init
        self.log_sigma = nn.Parameter(torch.tensor(float(sigma0)).log())
        if kind == "eq5":
            self.fg_head = nn.Conv2d(c, 1, 1)
            return
        last = self.phi_head[-1]  # offsets (flows) start at zero: every pixel votes for itself
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        if kind == "anchor":
            self.sigma_head = nn.Conv2d(c, 1, 1)  # log sigma per pixel, relative to log_sigma
            nn.init.zeros_(self.sigma_head.weight)
            nn.init.zeros_(self.sigma_head.bias)
        # full-resolution head (edges of thin worms): image + upsampled features -> 0 / 1 / 2+ worms
        self.image_head = nn.Sequential(nn.Conv2d(config.in_channels, 8, 3, padding=1), nn.ReLU(inplace=True))
        self.count_head = nn.Sequential(nn.Conv2d(c + 8, 16, 3, padding=1), nn.ReLU(inplace=True),
                                        nn.Conv2d(16, 3, 1))
        if config.count_refiner:
            self.count_refiner = CountRefiner()

    def with_input_scale(self, scale: float) -> "SemiConvNet":
        """This model (the same parameters, not a copy of them) seeing images resized by ``1 / scale``."""
        view = copy.copy(self)
        view.config = replace(self.config, input_scale=float(scale))
        return view

    @property
    def sigma(self) -> torch.Tensor:
        """Kernel bandwidth in Psi units of the input image."""
        return self.log_sigma.exp() * self.config.input_scale

    def forward(self, x: torch.Tensor, origin=(0, 0)) -> Outputs:
        """``x (B, C, H, W)`` normalized images -> :class:`Outputs` at ``(H, W)``."""
        return self.heads(*self.features(x), x.shape[-2:], origin)

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``x (B, C, H, W)`` normalized images -> what :meth:`heads` takes: the backbone's features
        ``(B, c, H / (downsample * input_scale), W / ...)`` and the image at the full-resolution head's size
        ``(B, C, H / input_scale, W / input_scale)`` (None for eq5 models, which have no such head)."""
        h, w = x.shape[-2:]
        s = self.config.input_scale
        full = resize(x, (max(1, math.ceil(h / s)), max(1, math.ceil(w / s)))) if self.config.target != "eq5" else None
        f = self.config.downsample * s  # the backbone's resolution
        feats = self.backbone(resize(x, (max(1, math.ceil(h / f)), max(1, math.ceil(w / f)))))
        return (self.refine(feats) if self.config.refine else feats), full

    def heads(self, feats: torch.Tensor, full: torch.Tensor | None, size: tuple[int, int], origin=(0, 0)) -> Outputs:
        """The heads on the backbone's ``feats (B, c, h', w')`` and, for the full-resolution head, the image
        ``full (B, C, H / input_scale, W / input_scale)`` (None for eq5 models) -> :class:`Outputs` at
        ``size`` (H, W). Fine-tuning trains them alone on cached features."""
        h, w = size
        s = self.config.input_scale
        kind = self.config.target
        parts = ([] if kind == "flow" else [self.seed_head(feats)]) + [self.phi_head(feats)]
        parts += [self.sigma_head(feats)] if kind == "anchor" else [self.fg_head(feats)] if kind == "eq5" else []
        heads = resize(torch.cat(parts, 1), (h, w))
        if kind == "flow":
            seed_logit, phi = None, heads
        else:
            seed_logit, phi = heads[:, :1], heads[:, 1 : 1 + self.config.dim]
        sigma = count_logit = None
        if kind == "eq5":
            fg_logit = heads[:, -1:]
        else:
            up = resize(feats, full.shape[-2:])
            count_logit = self.count_head(torch.cat([up, self.image_head(full)], 1))
            if self.config.count_refiner:
                count_logit = self.count_refiner(torch.cat([full, count_logit, resize(phi[:, :2], full.shape[-2:])], 1))
            count_logit = resize(count_logit, (h, w))
            # P(at least one worm) as a logit: log(p1 + p2) - log(p0)
            fg_logit = torch.logsumexp(count_logit[:, 1:], 1, keepdim=True) - count_logit[:, :1]
        if kind == "anchor":
            bound = self.config.offset_range / self.config.coord_scale
            phi = torch.cat([bound * torch.tanh(phi[:, :2] / bound), phi[:, 2:]], 1)
            sigma = (self.log_sigma + heads[:, -1:]).exp() * s
        if kind == "flow":  # a direction per pixel: the same at any input scale
            return Outputs(fg_logit, None, phi, None, None, count_logit)
        if s != 1:  # displacements learned in training-data pixels -> image pixels (all dims, so K is kept)
            phi = phi * s
        psi = phi
        if self.config.semiconv:
            psi = phi + pixel_coordinates(h, w, self.config.dim, self.config.coord_scale,
                                          origin=origin, device=feats.device)[None]
        return Outputs(fg_logit, seed_logit, phi, psi, sigma, count_logit)


def resize(x: torch.Tensor, size) -> torch.Tensor:
    """``(B, C, h, w)`` -> ``(B, C, *size)``: area averaging to shrink, bilinear to enlarge, as is if equal."""
    size = tuple(int(v) for v in size)
    if tuple(x.shape[-2:]) == size:
        return x
    if size[0] <= x.shape[-2] and size[1] <= x.shape[-1]:
        return F.interpolate(x, size=size, mode="area")
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def build_model(config: ModelConfig | None = None) -> SemiConvNet:
    """A freshly initialised model for ``config`` (defaults if None)."""
    return SemiConvNet(config or ModelConfig())
