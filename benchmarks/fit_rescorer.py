"""Fit a model's instance rescorer on decoded training scenes; choose its score cut on validation scenes.

    python benchmarks/fit_rescorer.py [--model M.pt] [--train 60] [--scenes 40] [--pool] [--write]

The model decodes ``--train`` synthetic scenes per style drawn with *training* seeds (RESCORE_SEED0 + i,
below TRAIN_SEEDS; never a validation or test scene) with its stored thresholds and no score cut; each
decoded instance is labelled with the fraction of avS's IoU thresholds its IoU with the nearest true worm passes, and the
rescorer network
of :mod:`napari_semiconv.rescoring` (two hidden layers of 16; a logistic model before session 23) is fitted on
their features. On ``--scenes`` validation scenes per style
(seeds VAL_SEED0 + 8000 + i) the decoder with the rescorer is scored at each score cut against the decoder
as stored (its own score and cut, and with its stored rescorer). With ``--pool`` (a piece model's) the candidates are
the worms of several joinings (``DecodeConfig.pool``) and the rescorer chooses among them. ``--write`` stores the rescorer and the best cut in the model file when
they beat the stored decoder there. Writes a section of docs/benchmarks.md.
"""

import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from napari_semiconv.data.sources import TRAIN_SEEDS, VAL_SEED0, validation_scenes
from napari_semiconv.decode import model_decode_config
from napari_semiconv.metrics import S_THRESHOLDS, evaluate, iou_matrix
from napari_semiconv.model.io import read_model_file, save_model
from napari_semiconv.registry import resolve_model
from napari_semiconv.rescoring import FEATURES, fit_rescorer
from napari_semiconv.segment import decode_outputs
from napari_semiconv.threshold_search import forward_all

RESCORE_SEED0 = TRAIN_SEEDS - 10**6  # training seeds, apart from any a short run draws at random in practice
STYLES = ("brightfield", "fluorescence")
CUTS = (0.0, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)


def labelled_features(model, config, scenes) -> tuple[np.ndarray, np.ndarray]:
    """``(M, F)`` features of every instance the model decodes in ``scenes`` and ``(M,)`` targets: the fraction of
    avS's IoU thresholds its IoU with the nearest true worm passes (0 when under 0.5; above 0.5 only one true worm can
    be that near). Keeping an instance of IoU 0.6 gains a match at 0.5 but adds a false positive at 0.7, 0.8, 0.9:
    avS rewards a high IoU."""
    feats, labels = [], []
    for scene, out in zip(scenes, forward_all(model, [s.image for s in scenes])):
        found = decode_outputs(out, config)
        iou = (iou_matrix(found.instances, scene.instances).max(1) if len(found.instances) and len(scene.instances)
               else np.zeros(len(found.instances)))
        hit = (iou[:, None] > np.array(S_THRESHOLDS)[None]).mean(1)
        feats.append(found.features)
        labels.append(hit)
    return np.concatenate(feats), np.concatenate(labels)


def scored(outputs, scenes, config, cuts=(None,)) -> list[dict]:
    """evaluate() of ``config`` on the forwards ``outputs`` of ``scenes``, for each score cut in ``cuts``
    (None: the config's own)."""
    decoded = [decode_outputs(o, replace(config, min_score=0.0) if cuts != (None,) else config) for o in outputs]
    truths = [s.instances for s in scenes]
    return [evaluate([d.instances[d.scores >= (c or 0)] for d in decoded], [d.scores[d.scores >= (c or 0)] for d in decoded],
                     truths) for c in cuts]


def main(argv=None):
    from report import model_name, model_parser, publish_model_section

    ap = model_parser(__doc__)
    ap.add_argument("--train", type=int, default=60, help="training scenes per style to fit on")
    ap.add_argument("--scenes", type=int, default=40, help="validation scenes per style to choose the cut on")
    ap.add_argument("--pool", action="store_true",
                    help="candidates from several joinings of a piece model's pieces; the rescorer chooses among them")
    ap.add_argument("--write", action="store_true", help="store the rescorer and its cut in the model file")
    args = ap.parse_args(argv)
    model = resolve_model(args.model, args.device)
    shipped = model_decode_config(model)
    stored = replace(shipped, rescorer=None, pool=False)
    plain = replace(stored, min_score=0.0, features=True, pool=args.pool)
    train = [s for i, style in enumerate(STYLES)
             for s in validation_scenes(args.train, style, seed0=RESCORE_SEED0 + 10**5 * i)]
    x, y = labelled_features(model, plain, train)
    rescorer = fit_rescorer(x, y)
    print(f"fitted on {len(y)} instances ({(y > 0).mean():.2f} match a worm)", flush=True)
    rows = {}
    for i, style in enumerate(STYLES):
        scenes = validation_scenes(args.scenes, style, seed0=VAL_SEED0 + 8000 + 1000 * i)
        outputs = forward_all(model, [s.image for s in scenes])
        rows[style] = ([scored(outputs, scenes, c)[0] for c in (stored, shipped)],
                       scored(outputs, scenes, replace(plain, rescorer=rescorer), CUTS))
    mean = [np.mean([rows[s][1][j]["avS"] for s in STYLES]) for j in range(len(CUTS))]
    best = int(np.argmax(mean))
    before = max(np.mean([rows[s][0][k]["avS"] for s in STYLES]) for k in range(2))
    table = ["| decoder | score cut | brightfield avS | S@0.5 | AP | fluorescence avS | S@0.5 | AP |", "|---" * 8 + "|"]
    table += [f"| {name} | {c.min_score:g} | " + " | ".join(
        f"{rows[s][0][k]['avS']:.3f} | {rows[s][0][k]['S@0.5']:.3f} | {rows[s][0][k]['AP']:.3f}" for s in STYLES) + " |"
        for k, (name, c) in enumerate([("as stored (own score)", stored), ("as stored (its rescorer)", shipped)])]
    table += [f"| rescored{' pool' if args.pool else ''}{' (best)' if j == best else ''} | {c:g} | " + " | ".join(
        f"{rows[s][1][j]['avS']:.3f} | {rows[s][1][j]['S@0.5']:.3f} | {rows[s][1][j]['AP']:.3f}" for s in STYLES) + " |"
        for j, c in enumerate(CUTS)]
    keep = args.write and mean[best] > before
    publish_model_section(
        args, "## Instance rescoring: a learned score for whole worms",
        f"Model `{model_name(model)}`. The rescorer (`napari_semiconv/rescoring.py`: {len(FEATURES)} features, two "
        f"hidden layers of 16) fitted on the {len(y)} "
        + ("candidate worms (the worms of joinings at probabilities 0.1 ... 0.9 and the pieces alone; "
           "`DecodeConfig.pool`) " if args.pool else "instances ")
        + f"the model decodes in {args.train} training scenes per style (seeds RESCORE_SEED0 + i; "
        f"{(y > 0).mean():.0%} of them lie at IoU > 0.5 from a true worm; target: the fraction of the IoU thresholds "
        f"0.5 ... 0.9 it passes), then scored on {args.scenes} validation scenes "
        f"per style (seeds VAL_SEED0 + 8000 + i) at each score cut, beside the decoder as stored.\n\n" + "\n".join(table)
        + ("\n\nThe best cut is stored with the rescorer in the model file." if keep else ""),
        "fit_rescorer.py", f"--train {args.train} --scenes {args.scenes}" + (" --pool" if args.pool else "")
        + (" --write" if args.write else ""))
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
