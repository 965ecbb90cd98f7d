"""Where a model's errors come from: foreground, the embedding's geometry, or the decoder.

    python benchmarks/diagnose.py [--model M.pt] [--scenes 20] [--device cpu]

On validation scenes (seeds VAL_SEED0 + 700 + i, never the test scenes) the network runs once per
scene and the ground truth is used to split the error:

- foreground IoU of the predicted foreground (p > 0.5);
- centre error: distance (px) from each worm's mean Psi (spatial dims) to its true centroid;
- crowding: distance (px) from each worm's centre to the nearest other worm's, for the true
  centroids and for the predicted means; a pair closer than the kernel radius cannot be told apart
  by the seeded decoder;
- worms found (best IoU > 0.5 with a decoded worm, as shipped) among those that cross or lie on another
  worm and among the others: where the decoder's errors are;
- avS of the decoder as shipped (the model's own thresholds), with the true foreground, and two oracles that place one seed per
  worm at its true mean Psi: pixels within the kernel radius, or every foreground pixel to the
  nearest mean. If even the oracles score low, the embedding (not the decoder) is what limits.

Writes a section of docs/benchmarks.md.
"""


import numpy as np
import torch

from napari_semiconv.data.sources import VAL_SEED0, validation_scenes
from napari_semiconv.decode import DecodeConfig, model_decode_config
from napari_semiconv.losses import pairwise_distance
from napari_semiconv.metrics import as_stack, evaluate, iou_matrix
from napari_semiconv.normalize import normalize
from napari_semiconv.registry import resolve_model
from napari_semiconv.segment import SegmentConfig, decode_outputs, predict_iter

DECODERS = ("as shipped", "true foreground", "oracle seeds, kernel radius", "oracle seeds, nearest mean")


def worm_centres(masks: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Mean of ``values (C, H, W)`` over each of ``masks (N, H, W)`` bool -> ``(N, C)``."""
    m = masks.reshape(len(masks), -1).float()
    return m @ values.reshape(len(values), -1).T / m.sum(1, keepdim=True)


def nearest_other(points: torch.Tensor) -> torch.Tensor:
    """``(N, C)`` points -> ``(N,)`` distance to the nearest other point (inf when alone)."""
    d = pairwise_distance(points, points)
    return (d + torch.diag(torch.full((len(points),), float("inf"), device=d.device))).min(1).values


def scene_diagnosis(model, scene, config: DecodeConfig) -> dict:
    """Geometry numbers and the four decodings (``(N, H, W)`` stacks with scores) of one scene.

    The target of a worm's votes is its centroid for eq. 5 models and its anchor (the centre line's
    midpoint) for anchored and flow ones (a flow model's votes are where its flow leads); the kernel radius is the model's one sigma, or each worm's mean sigma.
    """
    out = list(predict_iter(model, normalize(scene.image), SegmentConfig()))[-1]
    psi, fg, sigma = out["psi"], out["fg"], out["sigma"]
    scale = model.config.coord_scale
    gt = torch.from_numpy(scene.instances).to(psi.device)
    true_fg = gt.any(0)
    h, w = true_fg.shape
    if model.config.target != "eq5":  # anchored and flow models vote for the anchor
        target = torch.from_numpy(scene.anchors).flip(1).to(psi.device) / scale  # (N, 2) x, y in Psi units
    else:
        yx = torch.stack(torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")).float().to(psi.device)
        target = worm_centres(gt, yx.flip(0)) / scale
    means = worm_centres(gt, psi)
    radius = worm_centres(gt, sigma[None])[:, 0] * -np.log(config.kernel_threshold)  # (N,) Psi units
    fg_pred = fg > config.fg_threshold
    dist = pairwise_distance(means, psi.reshape(len(psi), -1).T)  # (N, H*W)
    nearest = torch.nn.functional.one_hot(dist.argmin(0), len(gt)).T.bool()
    oracles = [(dist < radius[:, None]) & true_fg.reshape(1, -1), nearest & true_fg.reshape(1, -1)]
    decoded = [decode_outputs(out, config), decode_outputs({**out, "fg": true_fg.float()}, config)]
    stacks = [(d.instances, d.scores) for d in decoded]
    for o in oracles:
        o = as_stack(o.reshape(-1, h, w).cpu().numpy())
        stacks.append((o, np.ones(len(o), np.float32)))
    crossing = (scene.instances & (scene.instances.sum(0) >= 2)).any((1, 2))  # (N,) worms in an overlap
    found = (iou_matrix(stacks[0][0], scene.instances).max(0) > 0.5 if len(stacks[0][0])
             else np.zeros(len(crossing), bool))
    return {
        "crossing": torch.from_numpy(crossing), "found": torch.from_numpy(found),
        "fg_iou": float((fg_pred & true_fg).sum() / (fg_pred | true_fg).sum()),
        "centre_error": (torch.linalg.norm(means[:, :2] - target, dim=1) * scale).cpu(),
        "true_gap": (nearest_other(target) * scale).cpu(),
        "pred_gap": (nearest_other(means) * scale).cpu(),
        "radius_px": (radius * scale).cpu(),
        "stacks": stacks,
    }


def main(argv=None):
    from report import model_name, model_parser, publish_model_section

    ap = model_parser(__doc__)
    ap.add_argument("--scenes", type=int, default=20, help="validation scenes per style")
    args = ap.parse_args(argv)
    model = resolve_model(args.model, args.device)
    config = model_decode_config(model)
    lines = ["| style | foreground IoU | centre error, median / p90 (px) | nearest other centre, median: true / "
             "predicted (px) | worms with another centre inside the kernel radius: true / predicted | worms in an "
             "overlap | found: in an overlap / others | "
             + " | ".join(f"avS {d}" for d in DECODERS) + " |", "|---" * (7 + len(DECODERS)) + "|"]
    with torch.no_grad():
        for i, style in enumerate(("brightfield", "fluorescence")):
            scenes = validation_scenes(args.scenes, style, seed0=VAL_SEED0 + 700 + 1000 * i)
            rows = [scene_diagnosis(model, s, config) for s in scenes]
            cat = {k: torch.cat([r[k] for r in rows])
                   for k in ("centre_error", "true_gap", "pred_gap", "radius_px", "crossing", "found")}
            cross, found = cat["crossing"], cat["found"].float()
            radius = cat["radius_px"]
            avs = [evaluate([r["stacks"][j][0] for r in rows], [r["stacks"][j][1] for r in rows],
                            [s.instances for s in scenes])["avS"] for j in range(len(DECODERS))]
            err = cat["centre_error"]
            lines.append(
                f"| {style} | {np.mean([r['fg_iou'] for r in rows]):.3f} | {err.median():.1f} / "
                f"{err.quantile(0.9):.1f} | {cat['true_gap'].median():.1f} / {cat['pred_gap'].median():.1f} | "
                f"{(cat['true_gap'] < radius).float().mean():.2f} / {(cat['pred_gap'] < radius).float().mean():.2f}"
                f" | {cross.float().mean():.2f} | {found[cross].mean():.2f} / {found[~cross].mean():.2f} | " + " | ".join(f"{a:.3f}" for a in avs) + " |")
            print(lines[-1], flush=True)
    heading = f"## Where the errors come from (embedding diagnosis), {model.config.target} model"
    publish_model_section(
        args, heading,
        f"{args.scenes} validation scenes per style (seeds VAL_SEED0 + 700 + i), model "
        f"`{model_name(model)}` ({model.config.target} target), "
        f"kernel radius median {radius.median():.1f} px (threshold {config.kernel_threshold}). Centre error: "
        "each worm's mean Psi in the spatial dims against the point its votes are trained toward (the "
        "centroid for eq. 5 models, the anchor on the body for anchored ones); 'true' gaps are between those "
        "points, 'predicted' gaps between the mean Psi (all dims). The oracles seed each worm at its true "
        "mean Psi and assign pixels within the kernel radius, or every pixel to the nearest mean. 'Found': the "
        "share of true worms whose best IoU with a decoded worm (as shipped) exceeds 0.5, for worms with pixels "
        "in an overlap and for the others.\n\n"
        + "\n".join(lines), "diagnose.py", f"--scenes {args.scenes}")

if __name__ == "__main__":
    main()
