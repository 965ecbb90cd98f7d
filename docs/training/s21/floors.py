"""avS of a model on test_shipped's fixed scenes (3 per style), as that test computes it."""
import sys

from napari_semiconv.data.sources import TEST_SEED0
from napari_semiconv.data.synthetic import SceneConfig, make_scene
from napari_semiconv.metrics import evaluate
from napari_semiconv.model import load_model
from napari_semiconv.segment import SegmentConfig, segment

model = load_model(sys.argv[1])
for style in ("brightfield", "fluorescence"):
    scenes = [make_scene(TEST_SEED0 + 4242 + (style == "fluorescence") + 10 * i, SceneConfig(style=style, worms=(14, 14)))
              for i in range(3)]
    results = [segment(model, s.image, SegmentConfig(keep_embedding=False)) for s in scenes]
    m = evaluate([r.instances.to_stack() for r in results], [r.scores for r in results], [s.instances for s in scenes])
    print(style, round(m["avS"], 3))
