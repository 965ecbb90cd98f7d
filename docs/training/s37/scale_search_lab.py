"""Choosing the input scale on the labelled images instead of taking the width estimate as it is (issue 15: the width
measured on two images has sd 0.13-0.17 in scale, and a scale 5-7 % off costs 0.02-0.04; session 36's scale_lab).
For P pairs of labelled images per magnified domain (validation seeds of benchmarks/finetune.py's recipe, VAL_SEED0 +
100 k + 5000 + 2 j, + 1; their label images as fine-tuning reads them), the width estimate's scale s and the scale
among s x FACTORS that scores best on the pair itself (kept only where it beats s there by CLEAR avS); each scored on
N other images of the domain (VAL_SEED0 + 100 k + 6000 + i).

    python docs/training/s37/scale_search_lab.py P N
"""

import sys
from pathlib import Path

import numpy as np

from napari_semiconv.data.sources import VAL_SEED0
from napari_semiconv.data.synthetic import make_scene
from napari_semiconv.decode import model_decode_config
from napari_semiconv.finetune import check_annotations
from napari_semiconv.registry import resolve_model
from napari_semiconv.threshold_search import forward_all, search_thresholds
from napari_semiconv.train import validate
from napari_semiconv.worm_size import size_scale, trained_worm_width

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))
from finetune import DOMAINS

FACTORS = (0.9, 0.95, 1.0, 1.05, 1.1)
CLEAR = 0.02


def on_labels(model, images, stacks, valid) -> float:
    """avS of ``model`` at its own thresholds on the annotated images."""
    config = model_decode_config(model)
    grid = {k: (getattr(config, k),) for k in ("kernel_threshold", "merge_threshold", "fg_threshold", "min_score")}
    return search_thresholds(forward_all(model, images), stacks, grid, valid, config)[0][0]


def main(pairs: int, n: int) -> None:
    base = resolve_model(None, "cpu")
    width = trained_worm_width(base)
    for k, (name, scene) in enumerate(DOMAINS.items()):
        test = [make_scene(VAL_SEED0 + 100 * k + 6000 + i, scene) for i in range(n)]
        rows = []
        for j in range(pairs):
            train = [make_scene(VAL_SEED0 + 100 * k + 5000 + 2 * j + i, scene) for i in range(2)]
            images, stacks, valid = check_annotations([s.image for s in train], [s.labels for s in train])
            s = size_scale(stacks, width)
            own = {f: on_labels(base.with_input_scale(s * f), images, stacks, valid) for f in FACTORS}
            best = max(FACTORS, key=own.get)
            pick = best if own[best] >= own[1.0] + CLEAR else 1.0
            test_at = {f: validate(base.with_input_scale(s * f), test)["avS"] for f in {1.0, pick}}
            rows.append((test_at[1.0], test_at[pick]))
            print(f"{name} | pair {j} | estimate {s:.2f} | on the pair " + " ".join(f"{f}:{v:.3f}" for f, v in own.items())
                  + f" | chosen x{pick} | test avS estimate {test_at[1.0]:.3f}, chosen {test_at[pick]:.3f}", flush=True)
        a, b = np.mean(rows, 0)
        print(f"{name} | mean over {pairs} pairs | estimate {a:.3f} | chosen {b:.3f}", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
