"""Fit a model's instance rescorer on decoded training scenes; choose its score cut on validation scenes.

    python benchmarks/fit_rescorer.py [--model M.pt] [--train 60] [--scenes 40] [--pool] [--magnified 0] [--write]

The model decodes ``--train`` synthetic scenes per style drawn with *training* seeds (RESCORE_SEED0 + i,
below TRAIN_SEEDS; never a validation or test scene) with its stored thresholds and no score cut; each
decoded instance is labelled with the fraction of avS's IoU thresholds its IoU with the nearest true worm passes, and the
rescorer network
of :mod:`napari_semiconv.rescoring` (two hidden layers of 16; a logistic model before session 23) is fitted on
their features. On ``--scenes`` validation scenes per style
(seeds VAL_SEED0 + 8000 + i) the decoder with the rescorer is scored at each score cut against the decoder
as stored (its own score and cut, and with its stored rescorer). With ``--pool`` (a piece model's) the candidates are
the worms of several joinings (``DecodeConfig.candidates``) and the rescorer chooses among them
(``DecodeConfig.pool``). With ``--magnified K``, K more
training scenes per style show worms magnified 1.4x ... 3x (drawn log-uniformly; the same field, so 1/m^2 as
many worms, more of them cut by the border), segmented as a user's size-matched model does (the image resized by
1/m inside the model, sizes read in training pixels); the cut is then chosen on as many validation scenes per style
of that kind too (seeds VAL_SEED0 + 20000 + i). ``--write`` stores the rescorer and the best cut in the model file when
they beat the stored decoder there. Writes a section of docs/benchmarks.md.
"""

import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from napari_semiconv.data.sources import TRAIN_SEEDS, VAL_SEED0, validation_scenes
from napari_semiconv.data.synthetic import SceneConfig, make_scene
from napari_semiconv.decode import model_decode_config
from napari_semiconv.metrics import S_THRESHOLDS, evaluate, iou_matrix
from napari_semiconv.model.io import read_model_file, save_model
from napari_semiconv.registry import resolve_model
from napari_semiconv.rescoring import FEATURES, fit_rescorer
from napari_semiconv.threshold_search import decode_plane, forward_all

RESCORE_SEED0 = TRAIN_SEEDS - 10**6  # training seeds, apart from any a short run draws at random in practice
STYLES = ("brightfield", "fluorescence")
CUTS = (0.0, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
MAGNIFICATION = (1.4, 3.0)  # the range of the magnified scenes' worm scale (drawn log-uniformly)


def magnified_scenes(n: int, style: str, seed0: int) -> tuple[list, list[float]]:
    """``n`` full-field scenes of ``style`` (seeds ``seed0 + i``) whose worms are magnified by m, drawn
    log-uniformly from :data:`MAGNIFICATION`: the default worm count divided by m^2 (at least 2 to 3 worms), and
    each scene's m."""
    mags = [float(np.exp(np.random.default_rng(seed0 + i).uniform(*np.log(MAGNIFICATION)))) for i in range(n)]
    low, high = SceneConfig().worms
    return [make_scene(seed0 + i, SceneConfig(style=style, scale=(m, m), worms=(max(2, round(low / m**2)),
                                                                               max(3, round(high / m**2)))))
            for i, m in enumerate(mags)], mags


def plain_scenes(n: int, style: str, seed0: int) -> tuple[list, list[float]]:
    """``n`` full-field scenes of ``style`` (seeds ``seed0 + i``) at the model's own worm size, and their
    magnifications (all 1), in the form of :func:`magnified_scenes`."""
    return validation_scenes(n, style, seed0=seed0), [1.0] * n


def forwards(model, scenes, mags) -> list[dict]:
    """The network's outputs for each scene, the model seeing a scene magnified by m at input scale m (as
    size matching sets it)."""
    return [forward_all(model.with_input_scale(m), [s.image])[0] for s, m in zip(scenes, mags)]


def labelled_features(model, config, scenes, mags) -> tuple[np.ndarray, np.ndarray]:
    """``(M, F)`` features of every instance the model decodes in ``scenes`` (magnified by ``mags``) and ``(M,)``
    targets: the fraction of
    avS's IoU thresholds its IoU with the nearest true worm passes (0 when under 0.5; above 0.5 only one true worm can
    be that near). Keeping an instance of IoU 0.6 gains a match at 0.5 but adds a false positive at 0.7, 0.8, 0.9:
    avS rewards a high IoU."""
    feats, labels = [], []
    for scene, m, out in zip(scenes, mags, forwards(model, scenes, mags)):
        found, masks = decode_plane(out, replace(config, pixel_scale=m))
        iou = (iou_matrix(masks, scene.instances).max(1) if len(masks) and len(scene.instances)
               else np.zeros(len(masks)))
        hit = (iou[:, None] > np.array(S_THRESHOLDS)[None]).mean(1)
        feats.append(found.features)
        labels.append(hit)
    return np.concatenate(feats), np.concatenate(labels)


def scored(outputs, scenes, mags, config, cuts=(None,)) -> list[dict]:
    """evaluate() of ``config`` on the forwards ``outputs`` of ``scenes`` (magnified by ``mags``), for each score
    cut in ``cuts`` (None: the config's own)."""
    decoded = [decode_plane(o, replace(config, pixel_scale=m, **({"min_score": 0.0} if cuts != (None,) else {})))
               for o, m in zip(outputs, mags)]
    truths = [s.instances for s in scenes]
    return [evaluate([f[d.scores >= (c or 0)] for d, f in decoded], [d.scores[d.scores >= (c or 0)] for d, _ in decoded],
                     truths) for c in cuts]


def main(argv=None):
    from report import model_name, model_parser, publish_model_section

    ap = model_parser(__doc__)
    ap.add_argument("--train", type=int, default=60, help="training scenes per style to fit on")
    ap.add_argument("--scenes", type=int, default=40, help="validation scenes per style to choose the cut on")
    ap.add_argument("--pool", action="store_true",
                    help="candidates from several joinings of a piece model's pieces; the rescorer chooses among them")
    ap.add_argument("--magnified", type=int, default=0,
                    help="training (and validation) scenes per style with worms magnified 1.4x ... 3x, size-matched")
    ap.add_argument("--write", action="store_true", help="store the rescorer and its cut in the model file")
    args = ap.parse_args(argv)
    model = resolve_model(args.model, args.device)
    shipped = model_decode_config(model)
    stored = replace(shipped, rescorer=None, pool=False)
    plain = replace(stored, min_score=0.0, features=True, candidates=args.pool)
    parts = [plain_scenes(args.train, style, RESCORE_SEED0 + 10**5 * i) for i, style in enumerate(STYLES)]
    if args.magnified:
        parts += [magnified_scenes(args.magnified, style, RESCORE_SEED0 + 10**5 * (i + 2))
                  for i, style in enumerate(STYLES)]
    x, y = map(np.concatenate, zip(*(labelled_features(model, plain, scenes, mags) for scenes, mags in parts)))
    rescorer = fit_rescorer(x, y)
    print(f"fitted on {len(y)} instances ({(y > 0).mean():.2f} match a worm)", flush=True)
    sets = {style: plain_scenes(args.scenes, style, VAL_SEED0 + 8000 + 1000 * i) for i, style in enumerate(STYLES)}
    if args.magnified:
        sets |= {f"{style} magnified": magnified_scenes(args.scenes, style, VAL_SEED0 + 20000 + 1000 * i)
                 for i, style in enumerate(STYLES)}
    rows = {}
    for name, (scenes, mags) in sets.items():
        outputs = forwards(model, scenes, mags)
        rows[name] = ([scored(outputs, scenes, mags, c)[0] for c in (stored, shipped)],
                      scored(outputs, scenes, mags, replace(plain, rescorer=rescorer, pool=args.pool,
                                                                      candidates=False), CUTS))
    mean = [np.mean([rows[s][1][j]["avS"] for s in sets]) for j in range(len(CUTS))]
    best = int(np.argmax(mean))
    before = max(np.mean([rows[s][0][k]["avS"] for s in sets]) for k in range(2))
    table = ["| decoder | score cut | " + " | ".join(f"{s} avS | S@0.5 | AP" for s in sets) + " |",
             "|---" * (2 + 3 * len(sets)) + "|"]
    table += [f"| {name} | {c.min_score:g} | " + " | ".join(
        f"{rows[s][0][k]['avS']:.3f} | {rows[s][0][k]['S@0.5']:.3f} | {rows[s][0][k]['AP']:.3f}" for s in sets) + " |"
        for k, (name, c) in enumerate([("as stored (own score)", stored), ("as stored (its rescorer)", shipped)])]
    table += [f"| rescored{' pool' if args.pool else ''}{' (best)' if j == best else ''} | {c:g} | " + " | ".join(
        f"{rows[s][1][j]['avS']:.3f} | {rows[s][1][j]['S@0.5']:.3f} | {rows[s][1][j]['AP']:.3f}" for s in sets) + " |"
        for j, c in enumerate(CUTS)]
    keep = args.write and mean[best] > before
    publish_model_section(
        args, "## Instance rescoring: a learned score for whole worms",
        f"Model `{model_name(model)}`. The rescorer (`napari_semiconv/rescoring.py`: {len(FEATURES)} features, two "
        f"hidden layers of 16) fitted on the {len(y)} "
        + ("candidate worms (the worms of joinings at probabilities 0.1 ... 0.9 and the pieces alone; "
           "`DecodeConfig.candidates`) " if args.pool else "instances ")
        + f"the model decodes in {args.train} training scenes per style (seeds RESCORE_SEED0 + i"
        + (f", and {args.magnified} per style with worms magnified {MAGNIFICATION[0]:g}x ... {MAGNIFICATION[1]:g}x, "
           "segmented size-matched" if args.magnified else "")
        + f"; {(y > 0).mean():.0%} of them lie at IoU > 0.5 from a true worm; target: the fraction of the IoU thresholds "
        f"0.5 ... 0.9 it passes), then scored on {args.scenes} validation scenes "
        f"per style (seeds VAL_SEED0 + 8000 + i"
        + (", and as many magnified ones, VAL_SEED0 + 20000 + i" if args.magnified else "")
        + ") at each score cut, beside the decoder as stored; the best cut has the best mean avS over the columns.\n\n"
        + "\n".join(table) + ("\n\nThe best cut is stored with the rescorer in the model file." if keep else ""),
        "fit_rescorer.py", f"--train {args.train} --scenes {args.scenes}" + (" --pool" if args.pool else "")
        + (f" --magnified {args.magnified}" if args.magnified else "") + (" --write" if args.write else ""))
    if keep:
        path = Path(model.metadata["path"])
        payload = read_model_file(path)
        meta = {**payload["metadata"], "rescorer": rescorer.to_metadata(),
                "decode": {**payload["metadata"].get("decode", {}), "min_score": CUTS[best], "pool": args.pool}}
        meta.pop("path", None)
        save_model(model, path, meta)
        card = path.with_suffix(".json")
        if card.exists():
            card.write_text(json.dumps({**json.loads(card.read_text()), "decode": meta["decode"],
                                        "rescorer": meta["rescorer"]}, indent=2))
        print(f"wrote the rescorer and the cut {CUTS[best]} into {path}")


if __name__ == "__main__":
    main()
