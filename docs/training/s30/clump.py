"""A look at the clump the shipped model drops whole (validation scene VAL_SEED0 + 9600, brightfield, rows 150-430,
columns 180-440): the image, the true worms per pixel, the count head's 0 / 1 / 2+ and where each foreground pixel's
vote lands (Psi), coloured by its true worm. usage: python docs/training/s30/clump.py OUT.png"""
import sys

import matplotlib
import numpy as np
import torch

from napari_semiconv.data.sources import VAL_SEED0
from napari_semiconv.data.synthetic import SceneConfig, make_scene
from napari_semiconv.model import load_model
from napari_semiconv.models import DEFAULT_MODEL
from napari_semiconv.normalize import normalize
from napari_semiconv.segment import SegmentConfig, predict_iter

matplotlib.use("Agg")
import matplotlib.pyplot as plt

torch.set_num_threads(2)
model = load_model(DEFAULT_MODEL)
scene = make_scene(VAL_SEED0 + 9600, SceneConfig(style="brightfield"))
out = next(o for o in predict_iter(model, normalize(scene.image), SegmentConfig()) if isinstance(o, dict))
r0, r1, c0, c1 = 150, 430, 180, 440
true = scene.instances.sum(0)[r0:r1, c0:c1]
count = out["count"].numpy()[r0:r1, c0:c1]
fg = out["fg"].numpy()[r0:r1, c0:c1] > 0.5
votes = out["psi"].numpy()[:, r0:r1, c0:c1][:, fg] * model.config.coord_scale  # (2, n) x, y px
print(f"true 2+ px {(true >= 2).sum()}, of them 3+ {(true >= 3).sum()}; counted 2+ on the true 2+ px "
      f"{(count[true >= 2] >= 2).mean():.2f}; distinct vote landings (1 px bins) "
      f"{len(np.unique(votes.round(), axis=1).T)}")
fig, ax = plt.subplots(1, 4, figsize=(28, 7))
for a, img, title in ((ax[0], scene.image[r0:r1, c0:c1], "image"),
                      (ax[1], np.minimum(true, 3), "true worms per px (3+)"),
                      (ax[2], count, "counted (0 / 1 / 2+)"), (ax[3], scene.image[r0:r1, c0:c1], "vote landings")):
    a.imshow(img, cmap="gray" if title in ("image", "vote landings") else None)
    a.set_title(title)
ax[3].scatter(votes[0] - c0, votes[1] - r0, c=scene.labels[r0:r1, c0:c1][fg] % 20, cmap="tab20", s=2)
ax[3].set_xlim(0, c1 - c0)
ax[3].set_ylim(r1 - r0, 0)
plt.savefig(sys.argv[1], dpi=55, bbox_inches="tight")
