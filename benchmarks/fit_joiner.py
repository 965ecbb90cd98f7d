"""Fit a piece model's joiner on its decoded training scenes; choose its threshold on validation scenes.

    python benchmarks/fit_joiner.py --model checkpoints/pieces.pt [--train 40] [--skip 0] [--seconds 240] [--scenes 20]
        [--relational] [--warm] [--hold 0.2] [--cache FILE] [--write]
    python benchmarks/fit_joiner.py --contacts --model FILE [--train 40] [--seconds 240] [--hold 0.2] [--cache FILE]
        [--write]   (the shipped contact network: --train 600 --seconds 600 --hold 0.2)

A piece model (``ModelConfig.flow_pieces``) decodes ``--train`` synthetic scenes per style drawn with training
seeds (JOIN_SEED0 + skip + i, never a validation or test scene) with its stored thresholds, no score cut and no joiner;
its pieces are the instances without the pixels counted 2+. Each pair of arms at a crossing patch
(:func:`napari_semiconv.joining.candidate_pairs`) is labelled 1 when both pieces lie mostly (> 80 % of their pixels)
in the same true worm. The :class:`~napari_semiconv.joining.JoinerNet` trains on them for ``--seconds`` (AdamW,
batches of 64, random flips and quarter turns, the two arms (their crops and features) swapped at random; a
``--relational`` one on whole patches drawn at random, 64 pairs on average; ``--warm``: starting from the model's own
joiner; ``--hold``: that share of the patches held out, the joiner kept where their loss is lowest, checked each
minute); its threshold is chosen on
``--scenes`` validation scenes per style (seeds VAL_SEED0 + 9000 + i) by the avS of the joined worms (one joining
at that threshold: no pool of joinings, which needs a rescorer to choose among them); the model's own joiner, if it
has one, is scored beside it. ``--cache`` keeps the labelled training pairs in a file for the next run (with the
``--train`` and ``--skip`` that made them; the model is not checked). ``--write``
stores the joiner in the model file (then refit its rescorer: benchmarks/fit_rescorer.py). Writes a section of
docs/benchmarks.md.

``--contacts`` fits the joiner's contact network instead (pieces that touch outside the crossings,
:func:`napari_semiconv.joining.contacts`) on the pairs at contacts alone, from the model's joiner network, and scores
the model's own decoding (pool, rescorer, cut, painter) with and without it; refitting the crossing joiner keeps a
contact network the model has.
"""

import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from napari_semiconv.data.sources import TRAIN_SEEDS, VAL_SEED0, validation_scenes
from napari_semiconv.data.synthetic import SceneConfig, make_scene
from napari_semiconv.decode import model_decode_config
from napari_semiconv.errors import SemiconvError
from napari_semiconv.joining import PAIR_FEATURES, SWAPPED, Joiner, JoinerNet, candidate_pairs, pair_arms
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


def labelled_pairs(model, config, scenes, touching: bool = False) -> dict[str, torch.Tensor]:
    """Every candidate pair of arms of the decoded ``scenes`` (an iterable, run one at a time), or with ``touching``
    those at contacts only (:func:`napari_semiconv.joining.contacts`): ``crops (M, 5, CROP, CROP)``, ``features (M,
    F)``, ``labels (M,)`` (1: one worm), ``arms (M, 2) long`` (ids of the pair's arms, unique over the scenes) and
    ``patch (M,) long`` (id of its patch, unique over the scenes; a patch's pairs are consecutive)."""
    crops, feats, labels, arms, patch = [], [], [], [], []
    n_arms = n_patches = 0
    for scene in scenes:  # one at a time: hundreds of scenes' outputs would not fit in memory
        out = forward_all(model, [scene.image])[0]
        multi = (out["count"] >= 2).cpu().numpy()
        pieces = decode_outputs(out, config).instances & ~multi
        _, patches, pairs = candidate_pairs(pieces, multi, out["image"].cpu().numpy(), touching)
        pairs = [p for p in pairs if patches[p[0]].contact] if touching else pairs
        own = owners(pieces, scene.instances)
        for k, a, b, x, c in pairs:
            crops.append(c)
            feats.append(torch.from_numpy(x))
            labels.append(float(own[patches[k].arms[a].piece] == own[patches[k].arms[b].piece]))
            patch.append(n_patches + k)
        arms.append(pair_arms(patches, pairs) + n_arms)
        n_arms += sum(len(p.arms) for p in patches)
        n_patches += len(patches)
    if not labels:
        raise SemiconvError("the training scenes gave no pair of arms to learn from: give more scenes (--train)")
    return {"crops": torch.stack(crops), "features": torch.stack(feats), "labels": torch.tensor(labels),
            "arms": torch.cat(arms), "patch": torch.tensor(patch)}


def train_joiner(pairs: dict[str, torch.Tensor], seconds: float, relational: bool = False, seed: int = 0,
                 watch=None, every: float = 60.0, init: JoinerNet | None = None) -> JoinerNet:
    """A :class:`JoinerNet` trained on the labelled ``pairs`` (:func:`labelled_pairs`) for ``seconds``. A relational
    one trains on whole patches drawn at random, 64 pairs on average. ``init``: a joiner to start from (a plain one's
    weights start a relational one, whose rivals then change nothing at first). ``watch(net, seconds,
    mean training loss)`` is called every ``every`` s of training (its own time not counted)."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    crops, feats, labels, arms, patch = (pairs[k] for k in ("crops", "features", "labels", "arms", "patch"))
    both = torch.cat([feats, feats[:, list(SWAPPED)]])  # the pairs in both orders, as training sees them
    net = JoinerNet(both.mean(0), both.std(0).clamp_min(1e-6), relational)
    if init is not None:
        if init.relational and not relational:
            raise SemiconvError("a relational joiner cannot start a plain one: add --relational")
        if relational and not init.relational:  # its rivals first change nothing
            torch.nn.init.zeros_(net.rivals[2].weight)
            torch.nn.init.zeros_(net.rivals[2].bias)
        missing, unexpected = net.load_state_dict({k: v.clone() for k, v in init.state_dict().items()}, strict=False)
        assert not unexpected and all(k.startswith("rivals.") for k in missing), (missing, unexpected)
    opt = torch.optim.AdamW(net.parameters(), 2e-3, weight_decay=1e-3)
    n_patches = int(patch.max()) + 1
    draws = max(round(64 * n_patches / len(labels)), 1)  # patches per batch: 64 pairs on average
    spent, watched, losses = 0.0, 0.0, []
    while spent < seconds:
        start = time.perf_counter()
        if relational:  # whole patches drawn alike (so each pair is as likely as in a batch of pairs drawn alike)
            idx = torch.isin(patch, torch.randint(n_patches, (draws,), generator=gen)).nonzero()[:, 0]
            if not len(idx):  # only patches without a pair drawn
                continue
        else:
            idx = torch.randint(len(labels), (64,), generator=gen)
        c = torch.rot90(crops[idx], int(torch.randint(4, (1,), generator=gen)), (2, 3))
        c = torch.flip(c, (3,)) if torch.rand(1, generator=gen) < 0.5 else c
        x, ends = feats[idx], arms[idx]
        if torch.rand(1, generator=gen) < 0.5:  # the two arms in either order
            c, x, ends = c[:, [0, 2, 1, 3, 4]], x[:, list(SWAPPED)], ends[:, [1, 0]]
        loss = F.binary_cross_entropy_with_logits(net(c, x, ends), labels[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        spent += time.perf_counter() - start
        if watch is None:
            continue
        losses.append(loss.item())
        if spent - watched >= every:
            watched = spent
            watch(net.eval(), spent, float(np.mean(losses)))
            net.train()
            losses.clear()
    return net.eval()


def held_out(pairs: dict[str, torch.Tensor], share: float, seed: int = 0):
    """``pairs`` (:func:`labelled_pairs`) split by patch: ``(training pairs, held-out pairs)``, about ``share`` of the
    patches (drawn at random) held out; each part's patch ids run 0..n-1 (its arm ids stay as they were)."""
    held = torch.rand(int(pairs["patch"].max()) + 1, generator=torch.Generator().manual_seed(seed)) < share
    test = held[pairs["patch"]]
    parts = tuple({k: v[m] for k, v in pairs.items() if k != "made_by"} for m in (~test, test))
    if not all(len(part["labels"]) for part in parts):
        raise SemiconvError(f"holding out {share:.0%} of {len(held)} patches leaves one part empty: "
                            "choose another share")
    for part in parts:
        part["patch"] = torch.unique(part["patch"], return_inverse=True)[1]
    return parts


def held_loss(net: JoinerNet, held: dict[str, torch.Tensor], batch: int = 512) -> float:
    """The mean log loss of ``net`` on the ``held`` pairs, run a few whole patches (about ``batch`` pairs) at a time."""
    last = int(held["patch"].max()) + 1
    starts = torch.cat([torch.arange(0, last, max(batch // 20, 1)), torch.tensor([last])])  # the last run ends at the end
    edges = torch.searchsorted(held["patch"], starts)
    total = 0.0
    with torch.no_grad():
        for i, j in zip(edges[:-1].tolist(), edges[1:].tolist()):  # loop over runs of whole patches
            logit = net(held["crops"][i:j], held["features"][i:j], held["arms"][i:j])
            total += F.binary_cross_entropy_with_logits(logit, held["labels"][i:j], reduction="sum").item()
    return total / len(held["labels"])


def fit_kept(pairs: dict[str, torch.Tensor], share: float, seconds: float, relational: bool, init=None):
    """:func:`train_joiner` on ``pairs`` without ``share`` of their patches (:func:`held_out`), kept where the held-out
    pairs' loss (printed each minute, from the start) is lowest: ``(net, seconds of training when kept)``."""
    train, held = held_out(pairs, share)
    best = {"loss": float("inf")}

    def watch(net, spent, train_loss):
        loss = held_loss(net, held)
        print(f"{spent:6.0f} s: training loss {train_loss:.4f}, held-out loss {loss:.4f}", flush=True)
        if loss < best["loss"]:
            best.update(loss=loss, spent=spent, state={k: v.clone() for k, v in net.state_dict().items()})

    watch(train_joiner(train, 0.0, relational, init=init), 0.0, float("nan"))
    net = train_joiner(train, seconds, relational, watch=watch, init=init)
    watch(net, seconds, float("nan"))
    net.load_state_dict(best["state"])
    return net, best["spent"]


def validation_rows(model, n: int, configs: list) -> dict[str, list[dict]]:
    """{style: the metrics of each decoder config in ``configs``} on ``n`` validation scenes per style (seeds
    VAL_SEED0 + 9000 + i), the network run once per scene; each style's avS printed."""
    from fit_rescorer import scored

    rows = {}
    for i, style in enumerate(STYLES):
        scenes = validation_scenes(n, style, seed0=VAL_SEED0 + 9000 + 1000 * i)
        outputs = forward_all(model, [s.image for s in scenes])
        rows[style] = [scored(outputs, scenes, [1.0] * len(scenes), config)[0] for config in configs]
        print(style, " ".join(f"{r['avS']:.3f}" for r in rows[style]), flush=True)
    return rows


def card_joiner(path: str) -> dict:
    """What the card beside the model file at ``path`` says of its joiner ({} where there is no card)."""
    card = Path(path).with_suffix(".json")
    return json.loads(card.read_text()).get("joiner", {}) if card.exists() else {}


def main(argv=None):
    from report import chosen, model_name, model_parser, publish_model_section, store_part, style_table

    ap = model_parser(__doc__)
    ap.add_argument("--train", type=int, default=40, help="training scenes per style")
    ap.add_argument("--seconds", type=float, default=240.0, help="training time of the joiner")
    ap.add_argument("--scenes", type=int, default=20, help="validation scenes per style to choose the threshold on")
    ap.add_argument("--relational", action="store_true", help="a relational joiner (it weighs each pair against the "
                    "pairs that share an arm with it)")
    ap.add_argument("--cache", help="a file for the labelled training pairs: read when it exists, else written")
    ap.add_argument("--skip", type=int, default=0, help="training scenes per style skipped (those an earlier fit saw)")
    ap.add_argument("--warm", action="store_true", help="start from the model's own joiner")
    ap.add_argument("--hold", type=float, default=0.0, help="share of the training patches held out: the joiner at "
                    "the lowest held-out loss (checked each minute) is kept")
    ap.add_argument("--contacts", action="store_true", help="fit the joiner's contact network (pieces that touch "
                    "outside the crossings) on contact pairs alone, from the model's joiner, which stays as it is")
    ap.add_argument("--write", action="store_true", help="store the joiner in the model file")
    args = ap.parse_args(argv)
    if args.write and not args.model:
        ap.error("--write needs --model: the file to store the joiner in (a copy of the shipped model)")
    model = resolve_model(args.model, args.device)
    if not model.config.flow_pieces:
        raise SemiconvError(f"{model_name(model)} is not a piece model (ModelConfig.flow_pieces): it has nothing to join")
    plain = replace(model_decode_config(model), min_score=0.0, joiner=None, rescorer=None, pool=False)
    own = model_decode_config(model).joiner
    if (args.warm or args.contacts) and own is None:
        ap.error(f"--warm and --contacts need a model with a joiner: {model_name(model)} has none")
    if args.contacts and (args.relational or own.net.relational):
        ap.error("--contacts fits a plain network for contacts from the model's joiner: leave out --relational, and "
                 "give a model whose joiner is plain (not relational)")
    made_by = torch.tensor([args.train, args.skip] + [1] * args.contacts)
    if args.cache and Path(args.cache).exists():
        pairs = torch.load(args.cache, weights_only=True)
        if not torch.equal(pairs.get("made_by", torch.zeros(2, dtype=torch.long)), made_by):
            raise SemiconvError(f"{args.cache} holds pairs of other scenes than --train {args.train} "
                                f"--skip {args.skip}" + " --contacts" * args.contacts + ", or pairs of the other kind "
                                "(at crossings or at contacts): give another --cache file")
    else:
        train = (make_scene(JOIN_SEED0 + 10**5 * i + args.skip + j, SceneConfig(style=style))
                 for i, style in enumerate(STYLES) for j in range(args.train))
        pairs = {**labelled_pairs(model, plain, train, args.contacts), "made_by": made_by}
        if args.cache:
            torch.save(pairs, args.cache)
    labels = pairs["labels"]
    print(f"{len(labels)} pairs of arms ({labels.mean():.2f} of one worm)", flush=True)
    if args.contacts:
        return fit_contacts(args, model, own, pairs)
    init = own.net if args.warm else None
    how = f"{len(labels)} arm pairs of {args.train} training scenes per style" + (
        f" (skipping the first {args.skip})" * (args.skip > 0) + ", from the model's previous joiner" * args.warm)
    if args.hold > 0:
        net, kept = fit_kept(pairs, args.hold, args.seconds, args.relational, init)
        how += f", {args.hold:.0%} of their patches held out, kept after {kept:.0f} s of {args.seconds:.0f} s"
    else:
        net = train_joiner(pairs, args.seconds, args.relational, init=init)
        how += f", {args.seconds:.0f} s"
    kept_contacts = own.contact_net if own is not None else None  # the new joiner keeps the model's contact network
    rows = validation_rows(model, args.scenes, [plain] + [
        replace(plain, joiner=Joiner(net, t, kept_contacts)) for t in THRESHOLDS] + [
        replace(plain, joiner=own)] * (own is not None))
    pick = THRESHOLDS[chosen(rows, len(THRESHOLDS))]
    names = ["none (the pieces, each crossing given to every piece that touches it)"] + [
        f"probability >= {t}" for t in THRESHOLDS] + [f"the model's own joiner (probability >= {own.threshold})"] * (
        own is not None)
    lines = style_table("joining", names, rows, ("avS", "S@0.5"))
    if args.write:
        said = card_joiner(args.model)
        kept_said = {"contacts_trained_on": said["contacts_trained_on"]} if kept_contacts is not None and said.get(
            "contacts_trained_on") else {}  # the contact network stays, and so does what the card says of it
        store_part(args.model, model, "joiner", Joiner(net.cpu(), pick, kept_contacts).to_metadata(), {
            "features": list(PAIR_FEATURES), "threshold": pick, "relational": args.relational, "trained_on": how,
            **kept_said})
    kind = "relational joiner" if args.relational else "joiner"
    publish_model_section(
        args, "## Joining a piece model's pieces across crossings",
        f"Model `{model_name(model)}`; {kind} trained on {how}; scored on {args.scenes} validation scenes per style "
        "(seeds VAL_SEED0 + 9000 + i), the model's thresholds without score cut. Threshold chosen: "
        f"{pick}{' (written to the model file)' if args.write else ''}.\n\n" + "\n".join(lines),
        "fit_joiner.py", f"--train {args.train} --seconds {args.seconds:.0f} --scenes {args.scenes}"
        + " --relational" * args.relational + f" --skip {args.skip}" * (args.skip > 0) + " --warm" * args.warm
        + f" --hold {args.hold}" * (args.hold > 0))


def fit_contacts(args, model, own: Joiner, pairs: dict[str, torch.Tensor]) -> None:
    """``--contacts``: the contact network fitted on the contact ``pairs`` from ``own``'s network (``--hold`` of their
    contacts held out, the network kept at the lowest held-out loss), scored in the model's own decoding (its pool,
    rescorer and painter) with and without it on ``--scenes`` validation scenes per style; ``--write`` stores ``own``
    with it."""
    from report import model_name, publish_model_section, store_part, style_table

    if args.hold > 0:
        net, kept = fit_kept(pairs, args.hold, args.seconds, False, own.net)
        how = f", {args.hold:.0%} of their contacts held out, kept after {kept:.0f} s of {args.seconds:.0f} s"
    else:
        net, how = train_joiner(pairs, args.seconds, init=own.net), f", {args.seconds:.0f} s"
    how = (f"{len(pairs['labels'])} arm pairs at contacts of {args.train} training scenes per style"
           + f" (skipping the first {args.skip})" * (args.skip > 0) + ", from the model's joiner" + how)
    joiner = replace(own, contact_net=net.cpu())
    shipped = model_decode_config(model)
    rows = validation_rows(model, args.scenes, [replace(shipped, joiner=replace(own, contact_net=None)),
                                                replace(shipped, joiner=joiner)])
    if args.write:
        store_part(args.model, model, "joiner", joiner.to_metadata(), {**card_joiner(args.model),
                                                                        "contacts_trained_on": how})
    lines = style_table("joining", ["across crossings (the model's joiner)", "across crossings and contacts"], rows,
                        ("avS", "S@0.5", "AP"))
    publish_model_section(
        args, "## Joining pieces that touch outside the crossings",
        f"Model `{model_name(model)}`; contact network trained on {how}; scored in the model's own decoding (its "
        f"pool, rescorer, score cut and painter) on {args.scenes} validation scenes per style (seeds VAL_SEED0 + "
        f"9000 + i){' (written to the model file)' if args.write else ''}.\n\n" + "\n".join(lines),
        "fit_joiner.py", f"--contacts --train {args.train} --seconds {args.seconds:.0f} --scenes {args.scenes}"
        + f" --skip {args.skip}" * (args.skip > 0) + f" --hold {args.hold}" * (args.hold > 0))


if __name__ == "__main__":
    main()
