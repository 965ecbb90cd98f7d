"""Fit a piece model's joiner on its decoded training scenes; choose its threshold on validation scenes.

    python benchmarks/fit_joiner.py --model checkpoints/pieces.pt [--train 40] [--seconds 240] [--scenes 20] [--write]

A piece model (``ModelConfig.flow_pieces``) decodes ``--train`` synthetic scenes per style drawn with training
seeds (JOIN_SEED0 + i, never a validation or test scene) with its stored thresholds, no score cut and no joiner;
its pieces are the instances without the pixels counted 2+. Each pair of arms at a crossing patch
(:func:`napari_semiconv.joining.candidate_pairs`) is labelled 1 when both pieces lie mostly (> 80 % of their pixels)
in the same true worm. The :class:`~napari_semiconv.joining.JoinerNet` trains on them for ``--seconds`` (AdamW,
batches of 64, random flips and quarter turns, the two arms (their crops and features) swapped at random); its threshold is chosen on
``--scenes`` validation scenes per style (seeds VAL_SEED0 + 9000 + i) by the avS of the joined worms (one joining
at that threshold: no pool of joinings, which needs a rescorer to choose among them). ``--write``
stores the joiner in the model file (then refit its rescorer: benchmarks/fit_rescorer.py). Writes a section of
docs/benchmarks.md.
"""

import time
from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F

from napari_semiconv.data.sources import TRAIN_SEEDS, VAL_SEED0, validation_scenes
from napari_semiconv.decode import model_decode_config
from napari_semiconv.errors import SemiconvError
from napari_semiconv.joining import PAIR_FEATURES, SWAPPED, Joiner, JoinerNet, candidate_pairs
from napari_semiconv.registry import resolve_model
from napari_semiconv.segment import decode_outputs
from napari_semiconv.threshold_search import forward_all

JOIN_SEED0 = TRAIN_SEEDS - 2 * 10**6  # training seeds apart from the rescorer's (fit_rescorer.RESCORE_SEED0)
STYLES = ("brightfield", "fluorescence")
THRESHOLDS = (0.05, 0.1, 0.15, 0.2, 0.3, 0.4)
MOSTLY = 0.8  # a piece belongs to the true worm holding more than this share of its pixels


def owners(pieces: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """``(N,) int``: the true worm of ``truth (M, H, W)`` holding most of each of ``pieces (N, H, W)`` when it holds
    more than MOSTLY of it, else -1 - the piece's index (a piece of no one worm joins no other)."""
    p = pieces.reshape(len(pieces), -1).astype(np.float32)
    share = p @ truth.reshape(len(truth), -1).T.astype(np.float32) / np.maximum(p.sum(1, keepdims=True), 1)
    return np.where(share.max(1, initial=0) > MOSTLY, share.argmax(1), -1 - np.arange(len(pieces)))


def labelled_pairs(model, config, scenes) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Crops ``(M, 5, CROP, CROP)``, features ``(M, F)`` and labels ``(M,)`` of every candidate pair of arms."""
    crops, feats, labels = [], [], []
    for scene, out in zip(scenes, forward_all(model, [s.image for s in scenes])):
        multi = (out["count"] >= 2).cpu().numpy()
        pieces = decode_outputs(out, config).instances & ~multi
        _, patches, pairs = candidate_pairs(pieces, multi, out["image"].cpu().numpy())
        own = owners(pieces, scene.instances)
        for k, a, b, x, c in pairs:
            pa, pb = patches[k].arms[a].piece, patches[k].arms[b].piece
            crops.append(c)
            feats.append(torch.from_numpy(x))
            labels.append(float(own[pa] == own[pb]))
    return torch.stack(crops), torch.stack(feats), torch.tensor(labels)


def train_joiner(crops, feats, labels, seconds: float, seed: int = 0) -> JoinerNet:
    """A :class:`JoinerNet` trained on the labelled pairs for ``seconds``."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    both = torch.cat([feats, feats[:, list(SWAPPED)]])  # the pairs in both orders, as training sees them
    net = JoinerNet(both.mean(0), both.std(0).clamp_min(1e-6))
    opt = torch.optim.AdamW(net.parameters(), 2e-3, weight_decay=1e-3)
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        idx = torch.randint(len(labels), (64,), generator=gen)
        c = torch.rot90(crops[idx], int(torch.randint(4, (1,), generator=gen)), (2, 3))
        c = torch.flip(c, (3,)) if torch.rand(1, generator=gen) < 0.5 else c
        x = feats[idx]
        if torch.rand(1, generator=gen) < 0.5:  # the two arms in either order
            c, x = c[:, [0, 2, 1, 3, 4]], x[:, list(SWAPPED)]
        loss = F.binary_cross_entropy_with_logits(net(c, x), labels[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net.eval()


def main(argv=None):
    from fit_rescorer import scored
    from report import chosen, model_name, model_parser, publish_model_section, store_part, style_table

    ap = model_parser(__doc__)
    ap.add_argument("--train", type=int, default=40, help="training scenes per style")
    ap.add_argument("--seconds", type=float, default=240.0, help="training time of the joiner")
    ap.add_argument("--scenes", type=int, default=20, help="validation scenes per style to choose the threshold on")
    ap.add_argument("--write", action="store_true", help="store the joiner in the model file")
    args = ap.parse_args(argv)
    if args.write and not args.model:
        ap.error("--write needs --model: the file to store the joiner in (a copy of the shipped model)")
    model = resolve_model(args.model, args.device)
    if not model.config.flow_pieces:
        raise SemiconvError(f"{model_name(model)} is not a piece model (ModelConfig.flow_pieces): it has nothing to join")
    plain = replace(model_decode_config(model), min_score=0.0, joiner=None, rescorer=None, pool=False)
    train = [s for i, style in enumerate(STYLES) for s in validation_scenes(args.train, style, seed0=JOIN_SEED0 + 10**5 * i)]
    crops, feats, labels = labelled_pairs(model, plain, train)
    print(f"{len(labels)} pairs of arms ({labels.mean():.2f} of one worm)", flush=True)
    net = train_joiner(crops, feats, labels, args.seconds)
    rows = {}
    for i, style in enumerate(STYLES):
        scenes = validation_scenes(args.scenes, style, seed0=VAL_SEED0 + 9000 + 1000 * i)
        outputs = forward_all(model, [s.image for s in scenes])
        configs = [plain] + [replace(plain, joiner=Joiner(net, t)) for t in THRESHOLDS]
        rows[style] = [scored(outputs, scenes, [1.0] * len(scenes), config)[0] for config in configs]
        print(style, " ".join(f"{r['avS']:.3f}" for r in rows[style]), flush=True)
    best = chosen(rows, len(THRESHOLDS))
    names = ["none (the pieces, each crossing given to every piece that touches it)"] + [
        f"probability >= {t}" for t in THRESHOLDS]
    lines = style_table("joining", names, rows, ("avS", "S@0.5"))
    if args.write:
        store_part(args.model, model, "joiner", Joiner(net.cpu(), THRESHOLDS[best]).to_metadata(), {
            "features": list(PAIR_FEATURES), "threshold": THRESHOLDS[best], "trained_on": f"{len(labels)} arm "
            f"pairs of {args.train} training scenes per style, {args.seconds:.0f} s"})
    publish_model_section(
        args, "## Joining a piece model's pieces across crossings",
        f"Model `{model_name(model)}`; joiner trained {args.seconds:.0f} s on the {len(labels)} arm pairs of {args.train} "
        f"training scenes per style, scored on {args.scenes} validation scenes per style (seeds VAL_SEED0 + 9000 + i), "
        "the model's thresholds without score cut. Threshold chosen: "
        f"{THRESHOLDS[best]}{' (written to the model file)' if args.write else ''}.\n\n" + "\n".join(lines),
        "fit_joiner.py", f"--train {args.train} --seconds {args.seconds:.0f} --scenes {args.scenes}")


if __name__ == "__main__":
    main()
