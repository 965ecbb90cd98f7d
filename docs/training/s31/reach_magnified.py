"""Does patch_reach (session 30: a worm is given only the crossing-patch pixels within REACH px, at the model's input
scale, of its own) cost magnified worms? The test table's brightfield 2x row (--worm-width 24) fell 0.603 -> 0.577 when
it came in. Here, on validation scenes (VAL_SEED0 + 22000 + i, never test seeds) of brightfield at 2x (3-8 worms per
field, as benchmarks/accuracy.py draws them) and fluorescence at 1.7x (4-10 worms), the shipped model segments
size-matched (SegmentConfig.worm_width, as a user does) and the same outputs are decoded at each reach (0 = whole patch).
usage: python docs/training/s31/reach_magnified.py SCENES REACH [REACH ...]"""
import sys
from dataclasses import replace

import torch

from napari_semiconv.data.sources import VAL_SEED0
from napari_semiconv.data.synthetic import SceneConfig, make_scene
from napari_semiconv.metrics import evaluate
from napari_semiconv.model import load_model
from napari_semiconv.models import DEFAULT_MODEL
from napari_semiconv.normalize import normalize
from napari_semiconv.segment import SegmentConfig, _prepared, decode_outputs, predict_iter
from napari_semiconv.worm_size import trained_worm_width

torch.set_num_threads(2)
n, reaches = int(sys.argv[1]), [float(r) for r in sys.argv[2:]]
base = load_model(DEFAULT_MODEL)
for style, m, worms in (("brightfield", 2.0, (3, 8)), ("fluorescence", 1.7, (4, 10))):
    scenes = [make_scene(VAL_SEED0 + 22000 + i, SceneConfig(style=style, scale=(m, m), worms=worms)) for i in range(n)]
    model, config = _prepared(base, SegmentConfig(worm_width=m * trained_worm_width(base)))
    outs = [next(o for o in predict_iter(model, normalize(s.image), config) if isinstance(o, dict)) for s in scenes]
    for reach in [0.0, *reaches]:
        found = [decode_outputs(o, replace(config.decode, patch_reach=reach)) for o in outs]
        e = evaluate([f.instances for f in found], [f.scores for f in found], [s.instances for s in scenes])
        print(f"{style} {m}x reach {reach or 'whole patch'}: avS {e['avS']:.3f} S@0.5 {e['S@0.5']:.3f} "
              f"AP {e['AP']:.3f}", flush=True)
