"""Size matching two ways on issue 15's magnified domains (validation seeds of benchmarks/finetune.py's test-image
recipe): the model's input scale (network on the resized image, decoding at the image's own size: today) against
resizing the image itself before the whole pipeline (decoding at the model's own size, masks enlarged back).

    python docs/training/s36/resize_lab.py N
"""

import sys

import numpy as np
import torch
import torch.nn.functional as F

from napari_semiconv.data.sources import VAL_SEED0
from napari_semiconv.data.synthetic import make_scene
from napari_semiconv.metrics import evaluate
from napari_semiconv.registry import resolve_model
from napari_semiconv.segment import SegmentConfig, segment
from napari_semiconv.train import validate

sys.path.insert(0, "benchmarks")
from finetune import DOMAINS


def shrunk(image: np.ndarray, scale: float) -> np.ndarray:
    """(H, W) -> (H / scale, W / scale) float32 by area averaging."""
    h, w = image.shape
    x = torch.from_numpy(image.astype(np.float32))[None, None]
    return F.interpolate(x, size=(round(h / scale), round(w / scale)), mode="area")[0, 0].numpy()


def enlarged(stack: np.ndarray, shape) -> np.ndarray:
    """(N, h, w) bool -> (N, *shape) bool, bilinear on the masks, cut at 0.5."""
    if not len(stack):
        return np.zeros((0, *shape), bool)
    x = torch.from_numpy(stack.astype(np.float32))[None]
    return F.interpolate(x, size=shape, mode="bilinear", align_corners=False)[0].numpy() > 0.5


n = int(sys.argv[1])
base = resolve_model(None, "cpu")
config = SegmentConfig(keep_embedding=False)
for k, (name, scene) in enumerate(DOMAINS.items()):
    test = [make_scene(VAL_SEED0 + 100 * k + 6000 + i, scene) for i in range(n)]
    mag = scene.scale[0]
    r = validate(base.with_input_scale(mag), test)
    print(f"{name} | input scale {mag:.2f} | avS {r['avS']:.3f} | S@0.5 {r['S@0.5']:.3f}", flush=True)
    results = [segment(base, shrunk(s.image, mag), config) for s in test]
    stacks = [enlarged(res.instances.to_stack(), s.image.shape) for res, s in zip(results, test)]
    r = evaluate(stacks, [res.scores for res in results], [s.instances for s in test])
    print(f"{name} | image resized by 1/{mag:.2f} | avS {r['avS']:.3f} | S@0.5 {r['S@0.5']:.3f}", flush=True)
