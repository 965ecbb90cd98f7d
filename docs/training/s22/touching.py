"""Pieces of one worm that touch with no crossing between them: can the flow across their contact tell them from two
worms lying against each other? For every pair of the shipped model's pieces that touch (4-neighbours), on validation
scenes (VAL_SEED0 + 700 + i): the contact's length (px pairs) and how much the two pieces' votes go away from the contact
(mean over its pixel pairs of -v_a . d and v_b . d, v the unit direction to where a pixel's vote lands, d the step from a's pixel to b's: 1 when both point straight
away from it, as at the boundary between two sinks of one split worm), labelled by the truth (both pieces mostly in one
worm). Prints the pairs' counts and the share of same-worm pairs above each split-score cut. usage: touching.py N"""
import sys
from dataclasses import replace

import numpy as np
import torch

from napari_semiconv.data.sources import VAL_SEED0, validation_scenes
from napari_semiconv.decode import model_decode_config
from napari_semiconv.model import load_model
from napari_semiconv.models import DEFAULT_MODEL
from napari_semiconv.segment import decode_outputs
from napari_semiconv.threshold_search import forward_all

sys.path.insert(0, "benchmarks")
from fit_joiner import owners

torch.set_num_threads(2)
model = load_model(sys.argv[2] if len(sys.argv) > 2 else DEFAULT_MODEL)
plain = replace(model_decode_config(model), min_score=0.0, joiner=None, rescorer=None)
n = int(sys.argv[1])
for i, style in enumerate(("brightfield", "fluorescence")):
    scenes = validation_scenes(n, style, VAL_SEED0 + 700 + 1000 * i)
    rows = []
    for s, out in zip(scenes, forward_all(model, [s.image for s in scenes])):
        multi = (out["count"] >= 2).cpu().numpy()
        pieces = decode_outputs(out, plain).instances & ~multi
        own = owners(pieces, s.instances)
        owner = np.where(pieces.any(0), pieces.argmax(0) + 1, 0)
        shift = out["shift"].cpu().numpy()  # (dy, dx) px: where each pixel's vote lands from it
        phi = torch.nn.functional.normalize(torch.from_numpy(np.stack([shift[1], shift[0]])), dim=0).numpy()  # (dx, dy)
        for axis, (dr, dc) in ((0, (1, 0)), (1, (0, 1))):
            a = owner[: owner.shape[0] - dr, : owner.shape[1] - dc]
            b = owner[dr:, dc:]
            m = (a > 0) & (b > 0) & (a != b)
            fa = phi[:, : owner.shape[0] - dr, : owner.shape[1] - dc][:, m]
            fb = phi[:, dr:, dc:][:, m]
            d = np.array([dc, dr], float)[:, None]  # (dx, dy) step from the a pixel to the b pixel
            away = (-(fa * d).sum(0) + (fb * d).sum(0)) / 2
            for pa, pb, v in zip(a[m] - 1, b[m] - 1, away):
                key = (min(pa, pb), max(pa, pb))
                rows.append((id(s), *key, v, own[pa] == own[pb]))
    pairs = {}
    for sid, pa, pb, v, same in rows:
        pairs.setdefault((sid, pa, pb), [[], same])[0].append(v)
    length = np.array([len(v) for v, _ in pairs.values()])
    score = np.array([np.mean(v) for v, _ in pairs.values()])
    same = np.array([s for _, s in pairs.values()])
    print(style, f"{len(same)} touching pairs, {same.sum()} of one worm", flush=True)
    for cut in (0.0, 0.3, 0.5, 0.7, 0.9):
        for minlen in (3, 8):
            sel = (score > cut) & (length >= minlen)
            print(f"  split score > {cut}, contact >= {minlen}: {sel.sum()} pairs, {same[sel].sum()} of one worm "
                  f"(recall {same[sel].sum() / max(same.sum(), 1):.2f})", flush=True)
