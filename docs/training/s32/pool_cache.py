"""Cache the pool's candidate worms of many scenes once, so that rescorers can be refitted and their choice scored in
seconds (rescorer_lab.py). For each scene the model's candidates (DecodeConfig.candidates: every distinct worm of the
joinings at probabilities 0.1 ... 0.9 and the pieces alone; no score cut) are decoded and kept as:
features (N, F) (rescoring.FEATURES), iou (N, T) with the true worms, and between candidates the pixels they share
outside the crossings (N, N) (the decoder's _choose keeps no two sharing one) and all pixels they share (N, N), with
their areas (N,). Sets: 'train' (fit_rescorer.py's fitting scenes, RESCORE_SEED0 + 10^5 k + i, 1x) and 'val'
(fit_rescorer.py's validation scenes, VAL_SEED0 + 8000 + 1000 k + i), k = 0 brightfield, 1 fluorescence.
usage: python docs/training/s32/pool_cache.py SET N OUT.npz [MODEL]"""
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))
from fit_rescorer import RESCORE_SEED0, STYLES, forwards, plain_scenes

from napari_semiconv.data.sources import VAL_SEED0
from napari_semiconv.decode import model_decode_config
from napari_semiconv.metrics import iou_matrix
from napari_semiconv.model import load_model
from napari_semiconv.models import DEFAULT_MODEL
from napari_semiconv.segment import decode_outputs

torch.set_num_threads(2)
which, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
model = load_model(sys.argv[4] if len(sys.argv) > 4 else DEFAULT_MODEL)
config = replace(model_decode_config(model), rescorer=None, pool=False, min_score=0.0, features=True, candidates=True)
seed0 = {"train": lambda k: RESCORE_SEED0 + 10**5 * k, "val": lambda k: VAL_SEED0 + 8000 + 1000 * k}[which]
rows = {key: [] for key in ("style", "features", "iou", "own_shared", "shared", "area")}
start = time.time()
for k, style in enumerate(STYLES):
    scenes, mags = plain_scenes(n, style, seed0(k))
    for scene, o in zip(scenes, forwards(model, scenes, mags)):
        found = decode_outputs(o, config)
        multi = ((o["count"] >= 2) & (o["fg"] > config.fg_threshold)).cpu().numpy()
        stack = found.instances.reshape(len(found.instances), -1).astype(np.float32)
        own = (found.instances & ~multi[None]).reshape(len(stack), -1).astype(np.float32)
        rows["style"].append(k)
        rows["features"].append(found.features)
        rows["iou"].append(iou_matrix(found.instances, scene.instances).astype(np.float32))
        rows["own_shared"].append((own @ own.T).astype(np.int32))
        rows["shared"].append((stack @ stack.T).astype(np.int32))
        rows["area"].append(stack.sum(1).astype(np.int32))
    print(f"{style}: {n} scenes, {time.time() - start:.0f} s", flush=True)
np.savez_compressed(out, **{key: np.array(v + [None], dtype=object)[:-1] for key, v in rows.items()})
