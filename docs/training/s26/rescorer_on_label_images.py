"""rescorer_on_user.py with the user images' worms as fine-tuning sees them: from their label images (check_annotations:
a worm partly covered by another loses the covered pixels). Usage: python rescorer_on_label_images.py 9500 [off-crossings]
(off-crossings: IoU targets computed off the pixels the model counts 2+)."""
import runpy
import sys

sys.argv = ["x", "2", *sys.argv[1:]]
import napari_semiconv.data.synthetic as syn
from napari_semiconv.finetune import check_annotations

orig = syn.make_scene
def labelled(seed, cfg, *a, **k):
    s = orig(seed, cfg, *a, **k)
    if seed >= 9500 + 0 and str(seed)[-4:-2] in ("95", "96", "97"):  # the user images: what a label image keeps
        _, stacks, _ = check_annotations([s.image], [s.labels])
        object.__setattr__(s, "instances", stacks[0]) if hasattr(s, "__dataclass_fields__") else setattr(s, "instances", stacks[0])
    return s
syn.make_scene = labelled
runpy.run_path("docs/training/s26/rescorer_on_user.py", run_name="__main__")
