"""Pieces that touch without a crossing patch, joined as extra candidates of the pool (issue 14; session 34's oracle:
fluorescence +0.04 where the truth joins them): for every joining of the pool and every two of its worms whose pieces
touch along >= CONTACT pixel pairs outside the patches, their union becomes a candidate too (its agreement: the share
of joinings that propose it); the rescorer chooses among all as before. The shipped model, with and without, on the
model-choice fields of benchmarks/bakeoff.py score (VAL_SEED0 + 1000 + i, N per style; the network runs once per
field).

    python docs/training/s36/touch_lab.py N [CONTACT ...]
"""

import sys
import time
from dataclasses import replace

import numpy as np
import torch

import napari_semiconv.decode as dec
from napari_semiconv.data.sources import VAL_SEED0, validation_scenes
from napari_semiconv.decode import _grid, _join_crossings, model_decode_config
from napari_semiconv.joining import join_readings
from napari_semiconv.metrics import evaluate
from napari_semiconv.normalize import normalize
from napari_semiconv.registry import resolve_model
from napari_semiconv.segment import SegmentConfig, decode_outputs, predict_iter

CONTACT = [0]  # 0: off


def touching(labels: np.ndarray, contact: int) -> np.ndarray:
    """``(M, 2)`` piece index pairs (0-based, a < b) of an ``(H, W)`` label image (0 background) that meet along at
    least ``contact`` 8-neighbour pixel pairs."""
    pairs = []
    for a, b in ((labels[1:], labels[:-1]), (labels[:, 1:], labels[:, :-1]), (labels[1:, 1:], labels[:-1, :-1]),
                 (labels[1:, :-1], labels[:-1, 1:])):
        meet = (a > 0) & (b > 0) & (a != b)
        pairs.append(np.sort(np.stack([a[meet], b[meet]], 1), 1) - 1)
    pairs = np.concatenate(pairs)
    if not len(pairs):
        return np.zeros((0, 2), int)
    found, counts = np.unique(pairs, axis=0, return_counts=True)
    return found[counts >= contact]


def join_pieces(members, seeds, idx, multi, shape, image, joiner, pool=None, reach=0.0):
    """decode._join_pieces with the touching unions added to the candidates."""
    pieces = members & ~multi[None]
    piece_grid = _grid(pieces, idx, shape).cpu().numpy()
    readings = join_readings(piece_grid, _grid(multi[None], idx, shape)[0].cpu().numpy(),
                             image.cpu().numpy().astype(np.float32), joiner, pool or (joiner.threshold,))
    groups = [np.eye(r.max() + 1, dtype=bool)[r].T for r in readings]  # (K, N) per joining
    labels = (np.arange(1, len(piece_grid) + 1)[:, None, None] * piece_grid).max(0)
    meet = touching(labels, CONTACT[0]) if CONTACT[0] else np.zeros((0, 2), int)
    for r in readings:  # loop over the (5) joinings
        apart = meet[r[meet[:, 0]] != r[meet[:, 1]]]
        if len(apart):
            groups.append((r[None] == r[apart[:, 0]][:, None]) | (r[None] == r[apart[:, 1]][:, None]))
    groups, held = np.unique(np.concatenate(groups), axis=0, return_counts=True)
    joined = torch.from_numpy(groups).to(members.device).float() @ pieces.float() > 0
    joined = _join_crossings(joined, idx, multi, shape, reach)
    best = torch.where(joined, seeds[None], -1.0).argmax(1)
    return joined, best, torch.from_numpy(np.minimum(held / len(readings), 1.0)).float().to(members.device)


def score(model, config, n: int, contacts) -> None:
    """Print the metrics of ``model`` decoded with ``config`` at each contact length (0: off) on the fields."""
    for style in ("brightfield", "fluorescence"):
        scenes = validation_scenes(n, style, VAL_SEED0 + 1000)
        outs = [list(predict_iter(model, normalize(s.image), SegmentConfig()))[-1] for s in scenes]
        for c in contacts:
            CONTACT[0] = c
            t0 = time.perf_counter()
            decoded = [decode_outputs(o, replace(config)) for o in outs]
            secs = (time.perf_counter() - t0) / n
            m = evaluate([d.instances for d in decoded], [d.scores for d in decoded], [s.instances for s in scenes])
            print(f"{style} | touching unions {'off' if not c else f'contact >= {c} px'} | avS {m['avS']:.3f} | "
                  f"S@0.5 {m['S@0.5']:.3f} | S@0.9 {m['S@0.9']:.3f} | AP {m['AP']:.3f} | decode {secs:.2f} s",
                  flush=True)


dec._join_pieces = join_pieces
if __name__ == "__main__":
    model = resolve_model(None, "cpu")
    score(model, model_decode_config(model), int(sys.argv[1]), [0] + [int(c) for c in sys.argv[2:]])
