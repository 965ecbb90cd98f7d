"""How much of the crossing loss is the count head's? The shipped model's outputs on validation fields (fit_rescorer.py's,
VAL_SEED0 + 8000 + 1000 k + i) decoded as shipped, and again with its count map (0, 1, 2+ worms per pixel) replaced by
the true one (the true worms per pixel, capped at 2) where the model sees foreground: the pieces, the patches, the joins
and the patch pixels then follow the true crossings; the network's embedding, seeds and foreground are unchanged.
usage: python docs/training/s32/count_oracle.py SCENES"""
import sys

import torch

from napari_semiconv.data.sources import VAL_SEED0, validation_scenes
from napari_semiconv.decode import model_decode_config
from napari_semiconv.metrics import evaluate
from napari_semiconv.model import load_model
from napari_semiconv.models import DEFAULT_MODEL
from napari_semiconv.segment import decode_outputs
from napari_semiconv.threshold_search import forward_all

torch.set_num_threads(2)
n = int(sys.argv[1])
model = load_model(DEFAULT_MODEL)
config = model_decode_config(model)
for k, style in enumerate(("brightfield", "fluorescence")):
    scenes = validation_scenes(n, style, VAL_SEED0 + 8000 + 1000 * k)
    outputs = forward_all(model, [s.image for s in scenes])
    for name, count in (("model's count", lambda o, s: o["count"]),
                        ("true count", lambda o, s: torch.from_numpy(s.instances.sum(0).clip(0, 2)).to(o["count"]))):
        found = [decode_outputs({**o, "count": count(o, s)}, config) for o, s in zip(outputs, scenes)]
        e = evaluate([f.instances for f in found], [f.scores for f in found], [s.instances for s in scenes])
        print(f"{style:12s} {name:14s} avS {e['avS']:.3f} S@0.5 {e['S@0.5']:.3f} S@0.9 {e['S@0.9']:.3f} AP {e['AP']:.3f}",
              flush=True)
