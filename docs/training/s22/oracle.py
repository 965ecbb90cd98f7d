"""Which output of the shipped piece model holds it back: its outputs swapped for the truth one by one, decoded with
its own joiner, rescorer and cut, on validation scenes (VAL_SEED0 + 700 + i). usage: oracle.py N"""
import sys
from dataclasses import replace

import numpy as np
import torch

from napari_semiconv.data.sources import VAL_SEED0, validation_scenes
from napari_semiconv.decode import decode, model_decode_config
from napari_semiconv.flow import flow_target, flow_votes
from napari_semiconv.metrics import evaluate, matches
from napari_semiconv.model import load_model
from napari_semiconv.model.embedding import pixel_coordinates
from napari_semiconv.models import DEFAULT_MODEL
from napari_semiconv.normalize import normalize

torch.set_num_threads(2)
model = load_model(sys.argv[2] if len(sys.argv) > 2 else DEFAULT_MODEL)
config = model_decode_config(model)
c = model.config
ROWS = ("predicted", "true fg", "true crossings", "true fg+crossings", "true flow", "true flow+crossings", "all true",
        "predicted, perfect cut", "predicted, no cut")


@torch.no_grad()
def variants(scene):
    x = torch.from_numpy(normalize(scene.image))[None, None]
    out = model(x)
    ins = scene.instances
    p = {"flow": out.phi[0, :2], "fg": torch.sigmoid(out.fg_logit[0, 0]),
         "cross": torch.softmax(out.count_logit[0], 0)[2]}
    t = {"flow": torch.from_numpy(flow_target(ins, scene.anchors, sink_clearance=c.sink_clearance, pieces=True)),
         "fg": torch.from_numpy(ins.any(0).astype(np.float32)),
         "cross": torch.from_numpy((ins.sum(0) >= 2).astype(np.float32))}
    sigma = model.sigma.detach() * torch.ones_like(p["fg"])
    res = {}
    for row in ROWS:
        src = {k: (t[k] if (row == "all true" or ({"fg": "fg", "cross": "crossings", "flow": "flow"}[k] in row
                                                    and row.startswith("true"))) else p[k]) for k in p}
        psi, seed = flow_votes(src["flow"], src["fg"], src["cross"], round(c.flow_steps * c.input_scale), c.coord_scale)
        count = torch.where(src["cross"] > 0.5, 2.0, torch.where(src["fg"] > config.fg_threshold, 1.0, 0.0))
        phi = psi - pixel_coordinates(*psi.shape[-2:], c.dim, c.coord_scale, origin=(0, 0))
        shift = torch.stack([phi[1], phi[0]]) * c.coord_scale
        cfg = replace(config, min_score=0.0) if "cut" in row else config
        d = decode(psi, src["fg"], seed, sigma, cfg, count, shift, x[0, 0])
        inst, sc = d.instances, d.scores
        if "perfect" in row:
            keep = np.zeros(len(inst), bool)
            m = matches(inst, ins, 0.5)
            keep[m[m >= 0]] = True
            inst, sc = inst[keep], sc[keep]
        res[row] = (inst, sc)
    return res


n = int(sys.argv[1])
for i, style in enumerate(("brightfield", "fluorescence")):
    scenes = validation_scenes(n, style, VAL_SEED0 + 700 + 1000 * i)
    got = [variants(s) for s in scenes]
    gts = [s.instances for s in scenes]
    for row in ROWS:
        e = evaluate([g[row][0] for g in got], [g[row][1] for g in got], gts)
        print(f"{style:12s} {row:28s} avS {e['avS']:.3f} S@0.5 {e['S@0.5']:.3f} S@0.9 {e['S@0.9']:.3f}", flush=True)
