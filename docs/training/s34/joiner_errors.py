"""How the shipped joiner's pair decisions go wrong: the shipped model decodes N validation fields per style
(VAL_SEED0 + 700 / 1700 + i, joinoracle.py's); at each decoding the pieces handed to the joiner are kept, and for every
candidate arm pair: the joiner's probability and whether both pieces are mostly one true worm (fit_joiner.owners; a
piece of no one worm joins none). Prints per style the pairs, the share that are one worm, the ranking's AUC, precision
and recall of the pairs above each pool probability, and of the greedy joining at the joiner's own threshold (each arm
once) the true pairs it joins, misses and the false ones it joins.
With MODEL (default: the shipped one) another model file is read.
usage: python docs/training/s34/joiner_errors.py N [MODEL]"""
import sys

import numpy as np
import torch

import napari_semiconv.decode as dec
from napari_semiconv.data.sources import VAL_SEED0, validation_scenes
from napari_semiconv.decode import POOL_THRESHOLDS, model_decode_config
from napari_semiconv.joining import candidate_pairs, join_in_order, pair_probabilities
from napari_semiconv.model import load_model
from napari_semiconv.models import DEFAULT_MODEL
from napari_semiconv.segment import decode_outputs
from napari_semiconv.threshold_search import forward_all

sys.path.insert(0, "benchmarks")
from fit_joiner import owners

torch.set_num_threads(2)
model = load_model(sys.argv[2] if len(sys.argv) > 2 else DEFAULT_MODEL)
config = model_decode_config(model)
real = dec.join_readings
seen = []


def keep(pieces, multi, image, joiner, thresholds):
    seen.append((pieces, multi, image))
    return real(pieces, multi, image, joiner, thresholds)


dec.join_readings = keep
n = int(sys.argv[1])
for i, style in enumerate(("brightfield", "fluorescence")):
    scenes = validation_scenes(n, style, VAL_SEED0 + 700 + 1000 * i)
    probs, same, greedy = [], [], np.zeros(3, int)  # greedy: true joined, true missed, false joined
    for scene, out in zip(scenes, forward_all(model, [s.image for s in scenes])):
        seen.clear()
        decode_outputs(out, config)
        pieces, multi, image = seen[0]
        _, patches, pairs = candidate_pairs(pieces, multi, image)
        if not pairs:
            continue
        p = pair_probabilities(config.joiner, patches, pairs)
        own = owners(pieces, scene.instances)
        s = np.array([own[patches[k].arms[a].piece] == own[patches[k].arms[b].piece] for k, a, b, _, _ in pairs])
        probs.append(p)
        same.append(s)
        worm = join_in_order(len(pieces), patches, pairs, [m for m in np.argsort(-p) if p[m] >= config.joiner.threshold])
        joined = np.array([worm[patches[k].arms[a].piece] == worm[patches[k].arms[b].piece] for k, a, b, _, _ in pairs])
        greedy += [int((joined & s).sum()), int((~joined & s).sum()), int((joined & ~s).sum())]
    p, s = np.concatenate(probs), np.concatenate(same)
    order = np.argsort(p)
    ranks = np.empty(len(p))
    ranks[order] = np.arange(1, len(p) + 1)
    auc = (ranks[s].sum() - s.sum() * (s.sum() + 1) / 2) / max(s.sum() * (~s).sum(), 1)
    print(f"{style}: {len(p)} candidate pairs, {s.mean():.3f} one worm, AUC {auc:.3f}; joiner threshold "
          f"{config.joiner.threshold}")
    for t in POOL_THRESHOLDS[:-1]:
        above = p >= t
        print(f"  p >= {t}: {above.sum()} pairs, precision {s[above].mean():.3f}, recall {above[s].mean():.3f}")
    print(f"  greedy joining: true pairs joined {greedy[0]}, missed {greedy[1]}, false pairs joined {greedy[2]} "
          "(a pair of pieces also counts as joined when a chain of other joins puts them in one worm)", flush=True)
