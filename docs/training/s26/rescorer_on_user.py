"""Can the rescorer learn a shifted domain from 2 labelled images? The shipped model size-matched (input scale = the
domain's magnification) on benchmarks/finetune.py's two domains, validation seeds only: the pool candidates of 2
'user' images (VAL_SEED0 + 9500 + i) with their targets (fraction of avS's IoU thresholds passed with the nearest
true worm), the rescorer refitted on them in three ways, scored on 6 other images (VAL_SEED0 + 9000 + i) with the
pool's choice and the model's cut:
  shipped   the shipped rescorer;
  scratch   a new 2x16 network on the user's candidates alone;
  warm      the shipped network trained on (user's candidates, its own scores of them kept as soft targets for
            half the weight), 300 steps, lr 1e-3 (what it knows stays where the user's few worms do not speak);
  recal     a logistic recalibration a * logit + b of the shipped score (monotonic: only the cut moves)."""
import sys
from dataclasses import replace
from itertools import pairwise

import numpy as np
import torch
import torch.nn.functional as F

from napari_semiconv.data.sources import VAL_SEED0
from napari_semiconv.data.synthetic import SceneConfig, make_scene
from napari_semiconv.decode import model_decode_config
from napari_semiconv.metrics import S_THRESHOLDS, evaluate, iou_matrix
from napari_semiconv.model import load_model
from napari_semiconv.models import DEFAULT_MODEL
from napari_semiconv.rescoring import Rescorer, fit_rescorer
from napari_semiconv.segment import decode_outputs
from napari_semiconv.threshold_search import forward_all

torch.set_num_threads(2)
n_user = int(sys.argv[1]) if len(sys.argv) > 1 else 2
off_crossings = len(sys.argv) > 3 and sys.argv[3] == "off-crossings"
user0 = VAL_SEED0 + (int(sys.argv[2]) if len(sys.argv) > 2 else 9500)  # the user images
base = load_model(DEFAULT_MODEL)
domains = {"fluorescence 1.7x": (SceneConfig(style="fluorescence", scale=(1.7, 1.7), worms=(6, 12)), 1.7),
           "brightfield 2x": (SceneConfig(style="brightfield", scale=(2.0, 2.0), worms=(5, 10)), 2.0)}


def candidates(outs, scenes, cfg):
    xs, ys = [], []
    for o, s in zip(outs, scenes):
        d = decode_outputs(o, cfg)
        keep = ~(o["count"].cpu().numpy() >= 2) if off_crossings else True  # IoU off the pixels counted 2+
        iou = iou_matrix(d.instances & keep, s.instances & keep).max(1) if len(d.instances) else np.zeros(0)
        xs.append(d.features)
        ys.append((iou[:, None] > np.array(S_THRESHOLDS)[None]).mean(1))
    return np.concatenate(xs), np.concatenate(ys)


def as_net(r: Rescorer):
    lin = [torch.nn.Linear(len(b_in), len(b_out)) for b_in, b_out in
           pairwise([r.mean] + [b for _, b in r.layers])]
    for l, (w, b) in zip(lin, r.layers):
        l.weight.data = torch.tensor(w)
        l.bias.data = torch.tensor(b)
    return lin, torch.nn.Sequential(*[m for l in lin for m in (l, torch.nn.ReLU())][:-1])


def warm(r: Rescorer, x, y, steps=300, lr=1e-3):
    lin, net = as_net(r)
    z = (torch.as_tensor(x[:, [list(r.features).index(f) if False else i for i, f in enumerate(r.features)]])
         - torch.tensor(r.mean)) / torch.tensor(r.scale)
    own = r(torch.as_tensor(x)).detach()
    target = 0.5 * torch.as_tensor(y, dtype=torch.float32) + 0.5 * own
    opt = torch.optim.Adam(net.parameters(), lr)
    for _ in range(steps):
        loss = F.binary_cross_entropy_with_logits(net(z.float())[:, 0], target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return Rescorer(r.mean, r.scale, tuple((tuple(map(tuple, l.weight.detach().tolist())), tuple(l.bias.detach().tolist()))
                                           for l in lin), r.features)


def recal(r: Rescorer, x, y):
    logit = torch.logit(r(torch.as_tensor(x)).detach().clamp(1e-4, 1 - 1e-4))
    ab = torch.zeros(2, requires_grad=True)
    opt = torch.optim.Adam([ab], 0.05)
    t = torch.as_tensor(y, dtype=torch.float32)
    for _ in range(300):
        loss = F.binary_cross_entropy_with_logits((1 + ab[0]) * logit + ab[1], t)
        opt.zero_grad()
        loss.backward()
        opt.step()
    a, b = 1 + float(ab[0]), float(ab[1])
    last_w, last_b = r.layers[-1]
    layers = (*r.layers[:-1], (tuple(tuple(a * v for v in row) for row in last_w), tuple(a * v + b for v in last_b)))
    return Rescorer(r.mean, r.scale, layers, r.features), (a, b)


for name, (cfg, s) in domains.items():
    model = base.with_input_scale(s)
    dc = model_decode_config(model)
    plain = replace(dc, rescorer=None, min_score=0.0, features=True)
    user = [make_scene(user0 + i, cfg) for i in range(n_user)]
    test = [make_scene(VAL_SEED0 + 9000 + i, cfg) for i in range(6)]
    x, y = candidates(forward_all(model, [u.image for u in user]), user, plain)
    touts = forward_all(model, [t.image for t in test])
    rec, ab = recal(dc.rescorer, x, y)
    for label, r in (("shipped", dc.rescorer), ("scratch", fit_rescorer(x, y)), ("warm", warm(dc.rescorer, x, y)),
                     (f"recal a={ab[0]:.2f} b={ab[1]:.2f}", rec)):
        ds = [decode_outputs(o, replace(dc, rescorer=r)) for o in touts]
        e = evaluate([d.instances for d in ds], [d.scores for d in ds], [t.instances for t in test])
        print(f"{name} | {label} | {len(y)} user candidates | avS {e['avS']:.3f} S@0.5 {e['S@0.5']:.3f} AP {e['AP']:.3f}",
              flush=True)
