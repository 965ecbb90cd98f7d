"""How well the worm width measured on two annotated label images gives issue 15's magnification (validation seeds
of benchmarks/finetune.py's training-image recipe, pairs of images): today's mean width (area / skeleton length)
against the median of twice the distance to the edge along the skeleton (the width across the body, blind to how
short a piece cut by a crossing worm is).

    python docs/training/s36/width_lab.py PAIRS
"""

import sys

import numpy as np
from scipy import ndimage as ndi
from skimage.morphology import skeletonize

from napari_semiconv.data.sources import VAL_SEED0
from napari_semiconv.data.synthetic import SceneConfig, make_scene
from napari_semiconv.finetune import check_annotations
from napari_semiconv.instances import Instances
from napari_semiconv.registry import resolve_model
from napari_semiconv.worm_size import trained_worm_width, worm_width

sys.path.insert(0, "benchmarks")
from finetune import DOMAINS


def body_width(stacks) -> float:
    """Median over worms of the median of 2 x (distance to the edge) on the worm's skeleton, px."""
    per_worm = []
    for stack in stacks:
        inst = Instances.from_stack(stack)
        for tight in inst.crops:
            crop = np.pad(tight, 1)
            skel = skeletonize(crop)
            if skel.sum() >= 3:
                per_worm.append(np.median(2 * ndi.distance_transform_edt(crop)[skel] - 1))
    return float(np.median(per_worm))


def annotated(seeds, scene):
    scenes = [make_scene(s, scene) for s in seeds]
    return check_annotations([s.image for s in scenes], [s.labels for s in scenes])[1]


pairs = int(sys.argv[1])
base = resolve_model(None, "cpu")
ref = [annotated([VAL_SEED0 + 500 + 2 * p, VAL_SEED0 + 501 + 2 * p], SceneConfig()) for p in range(pairs)]
ref_mean = np.median([worm_width(r) for r in ref])
ref_body = np.median([body_width(r) for r in ref])
print(f"scale 1 training scenes: mean width {ref_mean:.2f} (model file {trained_worm_width(base):.2f}), body width "
      f"{ref_body:.2f}", flush=True)
for k, (name, scene) in enumerate(DOMAINS.items()):
    seed0 = VAL_SEED0 + 100 * k + 5000
    got = np.array([(worm_width(s) / trained_worm_width(base), body_width(s) / ref_body)
                    for s in (annotated([seed0 + 2 * p, seed0 + 2 * p + 1], scene) for p in range(pairs))])
    for j, what in enumerate(("mean width", "body width")):
        print(f"{name} | {what} | scale median {np.median(got[:, j]):.3f} mean {got[:, j].mean():.3f} "
              f"sd {got[:, j].std():.3f} range {got[:, j].min():.2f}-{got[:, j].max():.2f}", flush=True)
