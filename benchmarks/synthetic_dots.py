"""Paper section 4: identical dots on a regular grid, convolutional vs semi-convolutional.

    python benchmarks/synthetic_dots.py [--steps 300]

The same small network is trained with Psi = Phi (convolutional) and Psi = Phi + u_hat
(semi-convolutional) on the eq. 5 loss; foreground pixels are clustered by k-means with the
true number of dots; S@0.5 and the adjusted Rand index are reported in docs/benchmarks.md.
"""

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from napari_semiconv.anchors import medoid_anchors
from napari_semiconv.decode import DecodeConfig, decode
from napari_semiconv.losses import LossWeights
from napari_semiconv.metrics import s_score
from napari_semiconv.model import ModelConfig, build_model
from napari_semiconv.train import TrainConfig, train_iter

ROOT = Path(__file__).resolve().parents[1]


def dots_image(size: int = 128, spacing: int = 16, radius: float = 3.5):
    """(H, W) float32 image of identical dots on a grid and their (K, H, W) bool masks."""
    yy, xx = np.mgrid[:size, :size]
    centres = np.arange(spacing // 2, size, spacing)
    masks = np.stack([(yy - r) ** 2 + (xx - c) ** 2 <= radius**2 for r in centres for c in centres])
    return masks.any(0).astype(np.float32), masks


def adjusted_rand(pred: np.ndarray, true: np.ndarray) -> float:
    """ARI between two flat integer labelings of the same pixels."""
    from scipy.special import comb

    _, p = np.unique(pred, return_inverse=True)
    _, t = np.unique(true, return_inverse=True)
    table = np.zeros((p.max() + 1, t.max() + 1))
    np.add.at(table, (p, t), 1)
    sum_comb = comb(table, 2).sum()
    a, b = comb(table.sum(1), 2).sum(), comb(table.sum(0), 2).sum()
    expected = a * b / comb(len(p), 2)
    return float((sum_comb - expected) / (0.5 * (a + b) - expected))


def run(semiconv: bool, steps: int = 300, seed: int = 0) -> dict:
    """Train one variant and score its k-means clustering of the dots."""
    torch.manual_seed(seed)
    image, masks = dots_image()
    model = build_model(ModelConfig(dim=4, width=8, depth=1, coord_scale=16.0, semiconv=semiconv, downsample=1))
    anchors = medoid_anchors(masks)
    source = lambda rng: (image, masks, None, anchors)
    config = TrainConfig(steps=steps, batch=1, crop=image.shape[0], lr=5e-3, augment=False, seed=seed,
                         weights=LossWeights(kernel=0.0, seed=0.0))
    for _ in train_iter(model, source, config):
        pass
    with torch.no_grad():
        out = model(torch.from_numpy(image)[None, None])
    fg = torch.from_numpy(masks.any(0).astype(np.float32))
    dec = decode(out.psi[0], fg, torch.ones_like(fg), model.sigma.item(),
                 DecodeConfig(name="kmeans", k=len(masks), min_size=1, fg_threshold=0.5))
    truth = np.argmax(masks, 0)[masks.any(0)]
    return {"S@0.5": s_score(dec.instances, masks, 0.5),
            "ARI": adjusted_rand(dec.labels[masks.any(0)], truth), "dots": len(masks)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--report", default=str(ROOT / "docs" / "benchmarks.md"))
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    rows = {name: run(semi, args.steps) for name, semi in (("convolutional (Psi = Phi)", False),
                                                            ("semi-convolutional (Psi = Phi + u)", True))}
    secs = time.perf_counter() - t0
    from report import cpu_name, replace_section

    lines = ["| embedding | S@0.5 | adjusted Rand index |", "|---|---|---|"]
    lines += [f"| {k} | {v['S@0.5']:.3f} | {v['ARI']:.3f} |" for k, v in rows.items()]
    section = ("## Synthetic dots (paper, section 4)\n\n"
               f"{rows[next(iter(rows))]['dots']} identical dots on a 128 x 128 grid, the same U-Net (depth 1, "
               f"width 8, d = 4) trained {args.steps} steps on eq. 5, k-means with the true K.\n\n"
               + "\n".join(lines) +
               f"\n\nCommand: `python benchmarks/synthetic_dots.py --steps {args.steps}` "
               f"({secs:.0f} s on {cpu_name()}, {torch.get_num_threads()} CPU threads, torch {torch.__version__}).\n")
    print(section)
    replace_section(Path(args.report), "## Synthetic dots", section)


if __name__ == "__main__":
    main()
