"""How the size-matched model fares on issue 15's magnified domains at other input scales, and on 1x scenes as
crowded as them (validation seeds of benchmarks/finetune.py's test-image recipe, VAL_SEED0 + 100 k + 6000 + i).

    python docs/training/s36/scale_lab.py N
"""

import sys
from dataclasses import replace

from napari_semiconv.data.sources import VAL_SEED0
from napari_semiconv.data.synthetic import make_scene
from napari_semiconv.registry import resolve_model
from napari_semiconv.train import validate

sys.path.insert(0, "benchmarks")
from finetune import DOMAINS

n = int(sys.argv[1])
base = resolve_model(None, "cpu")
for k, (name, scene) in enumerate(DOMAINS.items()):
    test = [make_scene(VAL_SEED0 + 100 * k + 6000 + i, scene) for i in range(n)]
    mag = scene.scale[0]
    for s in (0.85, 0.95, 1.0, 1.05, 1.15):
        r = validate(base.with_input_scale(mag * s), test)
        print(f"{name} | input scale {mag * s:.2f} | avS {r['avS']:.3f} | S@0.5 {r['S@0.5']:.3f}", flush=True)
    dense = tuple(w * mag**2 for w in scene.worms)
    flat = [make_scene(VAL_SEED0 + 100 * k + 6000 + i, replace(scene, scale=(1.0, 1.0), worms=dense))
            for i in range(n)]
    r = validate(base, flat)
    print(f"{name} | the same at 1x, {dense[0]:.0f}-{dense[1]:.0f} worms per field | avS {r['avS']:.3f} | "
          f"S@0.5 {r['S@0.5']:.3f}", flush=True)
