"""Semi-convolutional Mask R-CNN (../shared/docs/semiconv.md, section 5), as RoI heads of torchvision's model.

- An embedding head shared over the FPN levels (1x1 conv + ReLU + 3x3 conv -> ``dim`` channels)
  gives Phi; the gradient it sends back into the FPN is scaled by ``grad_scale`` (1/10).
- Per RoI, Phi is pooled on the mask grid (M x M, M = 28) with the mask branch's level choice, and
  Psi = Phi + u_hat, u_hat = (x, y, 0, ...) / coord_scale with (x, y) the image coordinates (px) of
  each bin's centre (exactly the point RoIAlign samples, so Psi is the semi-convolutional embedding
  of that image point).
- seed embedding Psi_s = sum_u softmax(s)(u) Psi_u; s_hat = s + log K_sigma(Psi_s, Psi_u) with
  K_sigma = exp(-||.|| / sigma) (sigma learned); the mask is sigmoid(s_hat).
- Losses: Mask R-CNN's (its mask loss on s_hat), eq. 5 on each positive RoI (every pixel of the
  matched worm's projected mask pulled to their mean Psi) and a BCE between K_sigma(Psi_s, .) and
  that mask.

torchvision's ``RoIHeads.forward`` runs the box branch; :class:`SemiConvRoIHeads` runs the mask branch
itself on positive RoIs drawn by ``RoIHeads.select_training_samples`` (a second draw, distributed as
the first), reusing torchvision's ``maskrcnn_loss``, ``maskrcnn_inference`` and
``project_masks_on_boxes``.
"""

from dataclasses import dataclass

import torch
from torch import nn
from torchvision.models.detection.roi_heads import (
    RoIHeads,
    maskrcnn_inference,
    maskrcnn_loss,
    project_masks_on_boxes,
)
from torchvision.ops import MultiScaleRoIAlign

LEVELS = ("0", "1", "2", "3")  # the FPN levels the mask branch pools from
EPS = 1e-6  # smallest distance / sigma in log(1 - K): keeps the kernel BCE finite at the seed


@dataclass(frozen=True)
class SemiConvConfig:
    """The semi-convolutional additions to Mask R-CNN."""

    dim: int = 8  # embedding size D (2 spatial + D - 2 appearance dims)
    hidden: int = 256  # channels of the head's 1x1 conv
    coord_scale: float = 64.0  # pixels per unit of u_hat (as our U-Net model: a worm spans a few units)
    sigma_init: float = 0.5  # initial kernel bandwidth, Psi units
    grad_scale: float = 0.1  # factor on the gradient the head sends into the FPN
    embedding_weight: float = 1.0  # weight of the eq. 5 loss
    kernel_weight: float = 1.0  # weight of the kernel BCE


class _ScaleGrad(torch.autograd.Function):
    """Identity forward; the gradient is multiplied by ``scale`` on the way back."""

    @staticmethod
    def forward(ctx, x, scale):
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.scale, None


def scale_grad(x: torch.Tensor, scale: float) -> torch.Tensor:
    """``x`` unchanged; the gradient flowing back through it is multiplied by ``scale``."""
    return _ScaleGrad.apply(x, scale)


class EmbeddingHead(nn.Module):
    """Phi on FPN levels: one shared 1x1 conv (``hidden``) + ReLU + 3x3 conv (``dim``) applied to each level."""

    def __init__(self, in_channels: int = 256, hidden: int = 256, dim: int = 8, grad_scale: float = 0.1,
                 levels: tuple = LEVELS):
        super().__init__()
        self.grad_scale = grad_scale
        self.levels = levels
        self.net = nn.Sequential(nn.Conv2d(in_channels, hidden, 1), nn.ReLU(inplace=True),
                                 nn.Conv2d(hidden, dim, 3, padding=1))

    def forward(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``features[level]`` (B, in_channels, h, w) -> ``{level: Phi (B, dim, h, w)}`` for ``self.levels``."""
        return {k: self.net(scale_grad(features[k], self.grad_scale)) for k in self.levels}


def roi_coordinates(boxes: torch.Tensor, size: int, dim: int, coord_scale: float) -> torch.Tensor:
    """u_hat on the RoIs' ``size`` x ``size`` bins: ``(R, dim, size, size)`` float, (x, y) / coord_scale of
    each bin centre in dims 0, 1 (image px; x along columns) and zeros after. ``boxes``: (R, 4) x0, y0, x1, y1 px.
    """
    t = (torch.arange(size, device=boxes.device, dtype=boxes.dtype) + 0.5) / size
    xs = boxes[:, 0, None] + t * (boxes[:, 2] - boxes[:, 0])[:, None]  # (R, size)
    ys = boxes[:, 1, None] + t * (boxes[:, 3] - boxes[:, 1])[:, None]
    out = boxes.new_zeros(len(boxes), dim, size, size)
    out[:, 0] = xs[:, None, :] / coord_scale
    out[:, 1] = ys[:, :, None] / coord_scale
    return out


def kernel_update(s: torch.Tensor, psi: torch.Tensor, sigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The per-RoI kernel update of every class channel.

    s : (R, C, M, M) mask logits; psi : (R, D, M, M) embeddings; sigma : scalar bandwidth (Psi units).
    Returns ``(s_hat, log_k)``, both (R, C, M, M): log K_sigma(Psi_s, Psi_u) = -||Psi_u - Psi_s|| / sigma
    with the seed embedding Psi_s = sum_u softmax(s)(u) Psi_u, and s_hat = s + log_k.
    """
    flat = psi.flatten(2)  # (R, D, M*M)
    p = torch.softmax(s.flatten(2), dim=-1)  # (R, C, M*M)
    seed = torch.einsum("rcm,rdm->rcd", p, flat)  # (R, C, D)
    dist = torch.linalg.vector_norm(flat[:, None] - seed[..., None], dim=2)  # (R, C, M*M)
    log_k = (-dist / sigma).view_as(s)
    return s + log_k, log_k


def embedding_loss(psi: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Eq. 5 on RoIs: mean over RoIs of (1/|S|) sum_{u in S} ||Psi_u - mean_S Psi||, S = the RoI's mask.

    psi : (R, D, M, M); masks : (R, M, M) projected ground truth in [0, 1] (a bin is in S at >= 0.5).
    RoIs with an empty S count as zero. Returns a scalar.
    """
    flat = psi.flatten(2)  # (R, D, M*M)
    w = (masks.flatten(1) >= 0.5).to(psi.dtype)  # (R, M*M)
    n = w.sum(1)
    mean = torch.einsum("rm,rdm->rd", w, flat) / n.clamp_min(1)[:, None]
    dev = torch.linalg.vector_norm(flat - mean[..., None], dim=1)  # (R, M*M)
    return ((dev * w).sum(1) / n.clamp_min(1)).sum() / (n > 0).sum().clamp_min(1)


def kernel_bce(log_k: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Mean BCE between K = exp(log_k) and ``masks`` (same shape, targets in [0, 1]), computed in log space."""
    log_not_k = torch.log(-torch.expm1(log_k.clamp(max=-EPS)))  # log(1 - K)
    return -(masks * log_k + (1 - masks) * log_not_k).mean()


class SemiConvRoIHeads(RoIHeads):
    """torchvision's RoI heads with the semi-convolutional kernel update in the mask branch.

    Built from the ``RoIHeads`` of a torchvision ``MaskRCNN`` (box and mask modules and settings taken
    over, so parameter names match the plain model's), plus the :class:`EmbeddingHead` on the FPN's
    ``in_channels`` and ``log_sigma``.
    Training adds the losses ``loss_embedding`` (eq. 5, weighted) and ``loss_kernel`` (kernel BCE,
    weighted) to Mask R-CNN's; ``loss_mask`` is torchvision's mask BCE applied to s_hat.
    """

    def __init__(self, heads: RoIHeads, config: SemiConvConfig, in_channels: int = 256):
        super().__init__(
            heads.box_roi_pool, heads.box_head, heads.box_predictor,
            heads.proposal_matcher.high_threshold, heads.proposal_matcher.low_threshold,
            heads.fg_bg_sampler.batch_size_per_image, heads.fg_bg_sampler.positive_fraction,
            heads.box_coder.weights, heads.score_thresh, heads.nms_thresh, heads.detections_per_img,
            mask_roi_pool=heads.mask_roi_pool, mask_head=heads.mask_head, mask_predictor=heads.mask_predictor)
        self.config = config
        self.embedding = EmbeddingHead(in_channels, config.hidden, config.dim, config.grad_scale)
        # the mask predictor's transposed conv doubles the pooled size: Psi is pooled at the logits' size
        self.mask_size = 2 * heads.mask_roi_pool.output_size[0]
        self.psi_roi_pool = MultiScaleRoIAlign(list(LEVELS), self.mask_size, sampling_ratio=2)
        self.log_sigma = nn.Parameter(torch.tensor(float(config.sigma_init)).log())

    @property
    def sigma(self) -> torch.Tensor:
        """Kernel bandwidth (Psi units), a scalar tensor."""
        return self.log_sigma.exp()

    def has_mask(self) -> bool:
        """False, so that ``RoIHeads.forward`` runs the box branch only: :meth:`forward` runs the mask branch."""
        return False

    def psi(self, features: dict[str, torch.Tensor], boxes: list[torch.Tensor],
            image_shapes: list[tuple[int, int]]) -> torch.Tensor:
        """Psi on the mask grid of the RoIs: ``(R, dim, M, M)`` for ``boxes`` (per image (R_i, 4) x0, y0, x1, y1 px)."""
        phi = self.psi_roi_pool(self.embedding(features), boxes, image_shapes)
        return phi + roi_coordinates(torch.cat(boxes), self.mask_size, self.config.dim, self.config.coord_scale)

    def mask_logits(self, features, boxes, image_shapes) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(s_hat, log_k, psi)`` of the RoIs ``boxes``: (R, C, M, M), (R, C, M, M), (R, dim, M, M)."""
        s = self.mask_predictor(self.mask_head(self.mask_roi_pool(features, boxes, image_shapes)))
        psi = self.psi(features, boxes, image_shapes)
        s_hat, log_k = kernel_update(s, psi, self.sigma)
        return s_hat, log_k, psi

    def forward(self, features, proposals, image_shapes, targets=None):
        """As ``RoIHeads.forward``: ``(detections, losses)``; detections get ``masks`` = sigmoid(s_hat)."""
        result, losses = super().forward(features, proposals, image_shapes, targets)
        if not self.training:
            s_hat, _, _ = self.mask_logits(features, [r["boxes"] for r in result], image_shapes)
            for probs, r in zip(maskrcnn_inference(s_hat, [r["labels"] for r in result]), result):
                r["masks"] = probs
            return result, losses
        proposals, matched, labels, _ = self.select_training_samples(proposals, targets)
        positive = [torch.where(lab > 0)[0] for lab in labels]
        boxes = [p[i] for p, i in zip(proposals, positive)]
        matched = [m[i] for m, i in zip(matched, positive)]
        s_hat, log_k, psi = self.mask_logits(features, boxes, image_shapes)
        gt_masks, gt_labels = [t["masks"] for t in targets], [t["labels"] for t in targets]
        losses["loss_mask"] = maskrcnn_loss(s_hat, boxes, gt_masks, gt_labels, matched)
        if len(psi) == 0:  # no positive RoI: zero losses that keep the graph
            zero = psi.sum() * 0 + log_k.sum() * 0
            losses.update(loss_embedding=zero, loss_kernel=zero)
            return result, losses
        target = torch.cat([project_masks_on_boxes(m, b, i, self.mask_size)
                            for m, b, i in zip(gt_masks, boxes, matched)])  # (R, M, M)
        cls = torch.cat([lab[i] for lab, i in zip(gt_labels, matched)])
        own = log_k[torch.arange(len(cls), device=cls.device), cls]  # (R, M, M): the matched class's kernel
        losses["loss_embedding"] = self.config.embedding_weight * embedding_loss(psi, target)
        losses["loss_kernel"] = self.config.kernel_weight * kernel_bce(own, target)
        return result, losses


__all__ = ["EmbeddingHead", "SemiConvConfig", "SemiConvRoIHeads", "embedding_loss", "kernel_bce", "kernel_update",
           "roi_coordinates", "scale_grad"]
