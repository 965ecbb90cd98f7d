"""Training losses for one image: eq. 5 attractive loss, foreground BCE, kernel BCE, margin.

Instances are given as an ``(N, H, W)`` bool/float stack; a pixel may belong to several
instances (crossing worms) and then counts in each. Everything is vectorised over instances
and pixels.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F

_EPS = 1e-6


@dataclass(frozen=True)
class LossWeights:
    """Weights of the loss terms (0 switches a term off)."""

    embedding: float = 1.0  # eq. 5 attractive term
    foreground: float = 1.0  # BCE of the foreground logit
    kernel: float = 1.0  # BCE of K_sigma(seed, .) against each instance mask
    seed: float = 1.0  # BCE of the seed logit against K_sigma(Psi_u, instance mean)
    margin: float = 0.0  # optional repulsive hinge between instance means
    centroid: float = 0.0  # pull Psi's spatial dims to the instance centroid (anchors the votes)
    margin_delta: float = 0.6  # hinge distance between instance means, Psi units (absolute, so
    # the embedding cannot shrink as a whole with sigma: eq. 5 alone has no repulsion)


def pairwise_distance(a: torch.Tensor, b: torch.Tensor, b_sq: torch.Tensor | None = None) -> torch.Tensor:
    """Unsquared L2 distances ``(N, P)`` between rows of ``a (N, d)`` and ``b (P, d)``; ``b_sq (P,)``: the squared
    norms of b's rows where a caller measuring many ``a`` against one ``b`` has them (the same numbers).

    Smooth at 0 (eps inside the root) so gradients stay finite.
    """
    sq = (a * a).sum(1, keepdim=True) - 2 * a @ b.T + ((b * b).sum(1) if b_sq is None else b_sq)[None]
    return (sq.clamp_min(0) + _EPS).sqrt()


def kernel(dist: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Steered bilateral kernel K = exp(-dist / sigma) (Laplacian, eq. 7)."""
    return torch.exp(-dist / sigma)


def attractive_loss(psi: torch.Tensor, masks: torch.Tensor, centres: torch.Tensor | None = None) -> torch.Tensor:
    """Eq. 5: sum over instances of the mean unsquared L2 distance of Psi_u to the instance centre.

    psi : (P, d) float embeddings of P pixels; masks : (N, P) float, 1 where pixel in instance;
    centres : (N, d), the instance means of psi when None.
    """
    n = masks.sum(1).clamp_min(1)
    centres = masks @ psi / n[:, None] if centres is None else centres
    return ((masks * pairwise_distance(centres, psi)).sum(1) / n).sum()


def margin_loss(means: torch.Tensor, delta: float) -> torch.Tensor:
    """Repulsive hinge between the ``(N, d)`` instance means, summed over pairs, per instance.

    Two terms: the full means must be ``delta`` apart, and pairs closer than ``delta`` (worms that
    cross or lie side by side, so that their centres nearly coincide) must also be ``delta`` apart
    in the appearance dims (2:). Without the second term the appearance dims stay collapsed: when
    two means share their appearance part, the full hinge pushes only along the spatial difference.
    """
    off = ~torch.eye(len(means), dtype=torch.bool, device=means.device)
    gap = pairwise_distance(means, means)[off]
    app_gap = pairwise_distance(means[:, 2:], means[:, 2:])[off]
    near = (gap < delta).detach().float()
    hinge = F.relu(delta - gap).pow(2) + near * F.relu(delta - app_gap).pow(2)
    return hinge.sum() / len(means)


def centroid_loss(psi_xy: torch.Tensor, coords: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Eq. 5 with the instance's centroid as the centre, in Psi's two spatial dims.

    psi_xy, coords : (P, 2) spatial Psi and u_hat of P pixels; masks : (N, P) float. The attractive
    loss is blind to a common shift of all instances (the net may vote hundreds of pixels off);
    this term makes Phi^g the displacement to the worm's centre, so the field can be read directly.
    """
    return attractive_loss(psi_xy, masks, masks @ coords / masks.sum(1, keepdim=True).clamp_min(1))


def _cut(instances: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """(N,) bool: instances touching the image border or the invalid region (their centroid is unknown)."""
    edge = torch.zeros_like(valid)
    edge[[0, -1], :] = True
    edge[:, [0, -1]] = True
    return (instances & (edge | ~valid)).flatten(1).any(1)


def instance_losses(psi: torch.Tensor, fg_logit: torch.Tensor, seed_logit: torch.Tensor,
                    sigma: torch.Tensor, instances: torch.Tensor, weights: LossWeights,
                    valid: torch.Tensor | None = None, coords: torch.Tensor | None = None
                    ) -> dict[str, torch.Tensor]:
    """All loss terms for one image.

    psi : (d, H, W); fg_logit, seed_logit : (H, W); sigma : scalar tensor;
    instances : (N, H, W) bool, may overlap; valid : (H, W) bool, pixels where the annotation is
    complete (others are ignored), None for all; coords : (2, H, W) u_hat in Psi units, needed by
    the centroid term (instances cut by the border or the invalid region are left out of it).
    Returns a dict of scalar tensors with "total".
    """
    d = psi.shape[0]
    valid = torch.ones_like(fg_logit, dtype=torch.bool) if valid is None else valid.bool()
    vflat = valid.reshape(-1)
    fg_target = instances.any(0).float() if len(instances) else torch.zeros_like(fg_logit)
    out = {"foreground": F.binary_cross_entropy_with_logits(fg_logit[valid], fg_target[valid])
           if vflat.any() else fg_logit.sum() * 0}
    zero = psi.sum() * 0
    for key in ("embedding", "kernel", "seed", "margin", "centroid"):
        out[key] = zero
    fg_pix = (fg_target.reshape(-1) > 0) & vflat
    if len(instances) and fg_pix.any():
        p = psi.reshape(d, -1)[:, fg_pix].T  # (P, d) foreground pixels
        masks = instances.reshape(len(instances), -1)[:, fg_pix].float()  # (N, P)
        keep = masks.sum(1) > 0
        masks = masks[keep]
        out["embedding"] = attractive_loss(p, masks)
        if weights.centroid > 0 and coords is not None:  # the border check only when the term is on
            whole = ~_cut(instances.bool(), valid)[keep]
            if whole.any():
                u = coords.reshape(2, -1)[:, fg_pix].T
                out["centroid"] = centroid_loss(p[:, :2], u, masks[whole])
        n = masks.sum(1)
        means = (masks @ p / n[:, None]).detach()
        k_mean = kernel(pairwise_distance(means, p), sigma).detach()  # (N, P)
        seed_target = (k_mean * masks).amax(0)
        s = seed_logit.reshape(-1)[fg_pix]
        out["seed"] = F.binary_cross_entropy_with_logits(s, seed_target)
        # differentiable seed: expected embedding under softmax of the seed score in each instance
        attn = torch.softmax(s[None].expand_as(masks).masked_fill(masks == 0, -1e9), dim=1)
        seeds = attn @ p  # (N, d)
        k = kernel(pairwise_distance(seeds, p), sigma).clamp(_EPS, 1 - _EPS)
        out["kernel"] = F.binary_cross_entropy(k, masks)
        if weights.margin > 0 and len(means) > 1:
            out["margin"] = margin_loss(masks @ p / n[:, None], weights.margin_delta)
    out["total"] = sum(getattr(weights, key) * out[key]
                       for key in ("embedding", "foreground", "kernel", "seed", "margin", "centroid"))
    return out


@dataclass(frozen=True)
class AnchorWeights:
    """Weights of the anchored model's loss terms (0 switches a term off)."""

    count: float = 1.0  # cross-entropy of the 0 / 1 / 2+ worms-per-pixel head (full resolution)
    anchor: float = 1.0  # pull Psi's spatial dims to the worm's anchor (eq. 5 with a fixed centre)
    mask: float = 1.0  # Lovasz hinge of each worm's soft mask K(Psi_u, its centre) against the worm
    seed: float = 1.0  # seed map regressed to the worm's kernel inside worms, to 0 outside
    smooth: float = 10.0  # sigma constant inside a worm (any seed recovers the worm's bandwidth)
    stride: int = 2  # embedding terms on every stride-th pixel (the embedding is smooth; full-res edges
    # come from the count head)


def lovasz_hinge(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Lovasz hinge (Berman et al. 2018), an IoU surrogate, per row: ``(N,)`` losses.

    logits : (N, P) float, > 0 predicts "in the mask"; labels : (N, P) float 0/1. Vectorised over
    rows (one sort per row).
    """
    signs = 2 * labels - 1
    errors = 1 - logits * signs
    errors, order = torch.sort(errors, dim=1, descending=True)
    gt = torch.gather(labels, 1, order)
    total = gt.sum(1, keepdim=True)
    inter = total - gt.cumsum(1)
    union = total + (1 - gt).cumsum(1)
    jaccard = 1 - inter / union.clamp_min(_EPS)
    grad = torch.cat([jaccard[:, :1], jaccard[:, 1:] - jaccard[:, :-1]], 1)
    return (F.relu(errors) * grad).sum(1)


def anchor_losses(psi: torch.Tensor, count_logit: torch.Tensor, seed_logit: torch.Tensor,
                  sigma: torch.Tensor, instances: torch.Tensor, anchors: torch.Tensor, coord_scale: float,
                  weights: AnchorWeights, valid: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """All loss terms of the anchored model for one image.

    psi : (d, H, W) Psi; count_logit : (3, H, W); seed_logit : (H, W); sigma : (H, W) bandwidth per
    pixel, Psi units; instances : (N, H, W) bool, may overlap (a pixel in two worms counts in both);
    anchors : (N, 2) float (row, col) px in this image's frame (may lie outside it for cut worms);
    valid : (H, W) bool, where the annotation is complete (None = everywhere). Each worm's centre is
    its anchor in the spatial dims and its mean Psi in the appearance dims; its bandwidth the mean
    sigma over its pixels. Returns a dict of scalar tensors with "total".
    """
    valid = torch.ones_like(seed_logit, dtype=torch.bool) if valid is None else valid.bool()
    out = {"count": _count_loss(count_logit, instances, valid)[0]}
    zero = psi.sum() * 0
    for key in ("anchor", "mask", "seed", "smooth"):
        out[key] = zero
    st = weights.stride
    vflat = valid[::st, ::st].reshape(-1)
    d = psi.shape[0]
    p = psi[:, ::st, ::st].reshape(d, -1)[:, vflat].T  # (P, d) valid pixels
    masks = instances[:, ::st, ::st].flatten(1)[:, vflat].float()  # (N, P); N may be 0 (a crop without worms)
    keep = masks.sum(1) > 0
    masks, anchors = masks[keep], anchors[keep]
    s = seed_logit[::st, ::st].reshape(-1)[vflat]
    if len(masks):
        n = masks.sum(1)
        sig = sigma[::st, ::st].reshape(-1)[vflat]
        sig_k = masks @ sig / n  # (N,) each worm's bandwidth
        centres = torch.cat([anchors.flip(1).to(p) / coord_scale, masks @ p[:, 2:] / n[:, None]], 1)
        out["anchor"] = (masks * pairwise_distance(centres[:, :2], p[:, :2])).sum(1).div(n).mean()
        k = kernel(pairwise_distance(centres, p), sig_k[:, None])  # (N, P) soft masks
        out["mask"] = lovasz_hinge(2 * k - 1, masks).mean()
        out["smooth"] = (masks * (sig[None] - sig_k[:, None]) ** 2).sum(1).div(n).mean()
        seed_target = (k.detach() * masks).amax(0)
    else:
        seed_target = torch.zeros_like(s)
    out["seed"] = F.mse_loss(torch.sigmoid(s), seed_target) if len(s) else zero
    out["total"] = sum(getattr(weights, key) * out[key] for key in ("count", "anchor", "mask", "seed", "smooth"))
    return out


@dataclass(frozen=True)
class FlowWeights:
    """Weights of the flow model's loss terms (0 switches a term off)."""

    count: float = 1.0  # cross-entropy of the 0 / 1 / 2+ worms-per-pixel head (full resolution)
    flow: float = 5.0  # squared error of the flow against the unit direction to the anchor, on single-worm pixels
    still: float = 1.0  # squared flow on the background (votes that leave a worm stop)
    crossing_class: float = 1.0  # weight of the 2+ class in the count loss (crossings are rare pixels, and a missed
    # one turns a vote onto the other worm)
    near_crossing: float = 0.0  # extra weight of the flow error within CROSSING_REACH px of a crossing, where a vote
    # that turns onto the other worm merges two worms (0 = every single-worm pixel counts the same)


CROSSING_REACH = 12  # px (a box) around pixels in two worms that near_crossing weighs more


def _count_loss(count_logit: torch.Tensor, instances: torch.Tensor, valid: torch.Tensor, crossing: float = 1.0):
    """Cross-entropy of ``count_logit (3, H, W)`` against the 0 / 1 / 2+ worms per pixel of ``instances
    (N, H, W)`` on ``valid (H, W)`` pixels, the (rare) 2+ class weighted ``crossing`` times; returns
    (loss, (H, W) long count)."""
    count = instances.sum(0).clamp_max(2) if len(instances) else torch.zeros_like(valid, dtype=torch.long)
    classes = torch.tensor([1.0, 1.0, crossing], device=count_logit.device)
    loss = (F.cross_entropy(count_logit.permute(1, 2, 0)[valid], count[valid].long(), weight=classes)
            if valid.any() else count_logit.sum() * 0)
    return loss, count


def flow_losses(flow: torch.Tensor, count_logit: torch.Tensor, target: torch.Tensor, instances: torch.Tensor,
                weights: FlowWeights, valid: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """All loss terms of the flow model for one image.

    flow : (2, H, W) predicted (dx, dy); count_logit : (3, H, W); target : (2, H, W) unit directions
    (napari_semiconv.flow.flow_target); instances : (N, H, W) bool, may overlap; valid : (H, W) bool,
    where the annotation is complete (None = everywhere). Pixels in two worms have no direction and
    are skipped by the flow terms. Paired flows (``flow`` and ``target`` (4, H, W), ``flow_target(pair=True)``)
    are scored on pixels in one worm (both flows its direction) and in two (each flow one worm's, in the
    order that fits best: the two worms' order is arbitrary). Returns a dict of scalar tensors with "total".
    """
    valid = torch.ones(flow.shape[-2:], dtype=torch.bool, device=flow.device) if valid is None else valid.bool()
    out = {}
    out["count"], count = _count_loss(count_logit, instances, valid, weights.crossing_class)
    err = ((flow - target) ** 2).sum(0)
    single, background = valid & (count == 1), valid & (count == 0)
    if len(flow) == 4:  # paired: the better of the two orders, each flow's error counted half
        swapped = ((flow - torch.cat([target[2:], target[:2]])) ** 2).sum(0)
        err = torch.minimum(err, swapped) / 2
        single = single | (valid & (instances.sum(0) == 2) if len(instances) else single)
    zero = flow.sum() * 0
    weight = torch.ones_like(err)
    if weights.near_crossing:  # pixels within CROSSING_REACH of a crossing (a box) weigh more
        weight += weights.near_crossing * F.max_pool2d((count == 2).float()[None, None], 2 * CROSSING_REACH + 1, 1,
                                                       CROSSING_REACH)[0, 0]
    out["flow"] = (err * weight)[single].sum() / weight[single].sum() if single.any() else zero
    out["still"] = err[background].mean() if background.any() else zero
    out["total"] = sum(getattr(weights, key) * out[key] for key in ("count", "flow", "still"))
    return out
