"""Two models on magnified and binary validation fields (the test table's other rows, never its seeds): brightfield at 2x
(3-8 worms per field, as benchmarks/accuracy.py draws them) and fluorescence at 1.7x (4-10 worms), VAL_SEED0 + 22000 + i,
segmented size-matched (SegmentConfig.worm_width, as a user does); and binary foreground input of fields at the
defaults (VAL_SEED0 + 1000 + i, the model-choice fields), each model with its own stored decoding.
usage: python docs/training/s31/magnified_choice.py SCENES MODEL [MODEL ...]"""
import sys

import numpy as np
import torch

from napari_semiconv.data.sources import VAL_SEED0, validation_scenes
from napari_semiconv.data.synthetic import SceneConfig, make_scene
from napari_semiconv.metrics import evaluate
from napari_semiconv.model import load_model
from napari_semiconv.segment import SegmentConfig, segment
from napari_semiconv.worm_size import trained_worm_width

torch.set_num_threads(2)
n, paths = int(sys.argv[1]), sys.argv[2:]
sets = {f"{style} {m}x": ([make_scene(VAL_SEED0 + 22000 + i, SceneConfig(style=style, scale=(m, m), worms=worms))
                            for i in range(n)], m, False)
        for style, m, worms in (("brightfield", 2.0, (3, 8)), ("fluorescence", 1.7, (4, 10)))}
sets |= {f"{style} binary input": (validation_scenes(n, style, VAL_SEED0 + 1000), 1.0, True)
         for style in ("brightfield", "fluorescence")}
for path in paths:
    model = load_model(path)
    for name, (scenes, m, binary) in sets.items():
        config = SegmentConfig(keep_embedding=False, binary=binary,
                               worm_width=m * trained_worm_width(model) if m != 1 else 0.0)
        results = [segment(model, s.instances.any(0).astype(np.uint8) if binary else s.image, config) for s in scenes]
        e = evaluate([r.instances.to_stack() for r in results], [r.scores for r in results],
                     [s.instances for s in scenes])
        print(f"{path} {name}: avS {e['avS']:.3f} S@0.5 {e['S@0.5']:.3f} AP {e['AP']:.3f}", flush=True)
