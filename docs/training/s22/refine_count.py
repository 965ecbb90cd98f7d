"""Experiment: a small count refiner on the shipped model's full-resolution outputs (image, 0/1/2+ logits, flow) ->
corrected 0/1/2+ logits, trained alone on cached outputs of training scenes, scored by decoding validation scenes.

usage: refine_count.py gen N OUT.pt            cache the model's outputs on N training scenes (random style)
       refine_count.py fit CACHE.pt SECONDS OUT.pt [INIT.pt]
       refine_count.py score REFINER.pt N      decode VAL_SEED0 + 700 + i with and without the refiner
"""
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from napari_semiconv.data.sources import TRAIN_SEEDS, VAL_SEED0, validation_scenes
from napari_semiconv.data.synthetic import SceneConfig, make_scene
from napari_semiconv.decode import decode, model_decode_config
from napari_semiconv.flow import flow_votes
from napari_semiconv.metrics import evaluate
from napari_semiconv.model import load_model
from napari_semiconv.model.embedding import pixel_coordinates
from napari_semiconv.models import DEFAULT_MODEL
from napari_semiconv.normalize import normalize

torch.set_num_threads(2)
SEED0 = TRAIN_SEEDS - 3 * 10**6


class CountRefiner(nn.Module):
    """(B, 6, H, W) image, count logits (3), flow (2) -> (B, 3, H, W) corrected count logits (residual)."""

    def __init__(self, c: int = 8, inner: int = 24):
        super().__init__()
        self.inp = nn.Sequential(nn.Conv2d(6, c, 3, padding=1), nn.ReLU(inplace=True))
        self.down = nn.Sequential(nn.Conv2d(c, inner, 3, stride=2, padding=1), nn.ReLU(inplace=True),
                                  nn.Conv2d(inner, inner, 3, padding=2, dilation=2), nn.ReLU(inplace=True),
                                  nn.Conv2d(inner, inner, 3, padding=4, dilation=4), nn.ReLU(inplace=True))
        self.out = nn.Sequential(nn.Conv2d(c + inner, c, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(c, 3, 1))
        nn.init.zeros_(self.out[-1].weight)
        nn.init.zeros_(self.out[-1].bias)

    def forward(self, x):
        a = self.inp(x)
        b = F.interpolate(self.down(a), size=a.shape[-2:], mode="bilinear", align_corners=False)
        return x[:, 1:4] + self.out(torch.cat([a, b], 1))


@torch.no_grad()
def outputs(model, image):
    x = torch.from_numpy(image)[None, None]
    out = model(x)
    return torch.cat([x[0], out.count_logit[0], out.phi[0, :2]])  # (6, H, W)


def gen(n, path):
    model = load_model(DEFAULT_MODEL)
    rng = np.random.default_rng(0)
    xs, ys = [], []
    t = time.time()
    for i in range(n):
        s = make_scene(SEED0 + i, SceneConfig())
        image = s.instances.any(0).astype(np.float32) if rng.random() < 0.1 else normalize(s.image)  # 10 % binary input
        xs.append(outputs(model, image).half())
        ys.append(torch.from_numpy(s.instances.sum(0).clip(0, 2).astype(np.uint8)))
        if i % 20 == 0:
            print(i, round(time.time() - t), flush=True)
    torch.save({"x": torch.stack(xs), "y": torch.stack(ys)}, path)


def fit(cache, seconds, path, init=None, crop=160, batch=8, lr=1e-3):
    """Train on crops of the cache for ``seconds``; from ``init`` (a state dict file) with the learning rate
    falling from ``lr`` to 0 on a cosine, else from scratch at a constant ``lr``."""
    d = torch.load(cache)
    x, y = d["x"], d["y"]
    net = CountRefiner()
    if init:
        net.load_state_dict(torch.load(init))
    opt = torch.optim.AdamW(net.parameters(), lr, weight_decay=1e-4)
    rng = np.random.default_rng(1)
    multi = [torch.nonzero(yy == 2) for yy in y]
    t0, step, avg = time.time(), 0, None
    while time.time() - t0 < seconds:
        xb, yb = [], []
        for _ in range(batch):
            i = int(rng.integers(len(x)))
            h, w = y[i].shape
            if len(multi[i]) and rng.random() < 0.7:  # centred near a crossing
                r, c = multi[i][int(rng.integers(len(multi[i])))].tolist()
                r, c = r + int(rng.integers(-crop // 3, crop // 3)), c + int(rng.integers(-crop // 3, crop // 3))
            else:
                r, c = int(rng.integers(h)), int(rng.integers(w))
            r0, c0 = int(np.clip(r - crop // 2, 0, h - crop)), int(np.clip(c - crop // 2, 0, w - crop))
            xx, yy = x[i, :, r0:r0 + crop, c0:c0 + crop].float(), y[i, r0:r0 + crop, c0:c0 + crop].long()
            k, flip = int(rng.integers(4)), bool(rng.integers(2))
            if flip:  # flip left-right: dx changes sign
                xx, yy = xx.flip(-1), yy.flip(-1)
                xx[4] = -xx[4]
            for _ in range(k):  # rotate 90 deg counter-clockwise: (dx, dy) -> (dy, -dx)
                xx, yy = xx.rot90(1, (-2, -1)), yy.rot90(1, (-2, -1))
                xx[4], xx[5] = xx[5].clone(), -xx[4].clone()
            xb.append(xx)
            yb.append(yy)
        if init:
            opt.param_groups[0]["lr"] = lr * 0.5 * (1 + np.cos(np.pi * min(1.0, (time.time() - t0) / seconds)))
        loss = F.cross_entropy(net(torch.stack(xb)), torch.stack(yb))
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        avg = loss.item() if avg is None else 0.98 * avg + 0.02 * loss.item()
        if step % 100 == 0:
            print(step, round(time.time() - t0), round(avg, 4), flush=True)
            torch.save(net.state_dict(), path)
    torch.save(net.state_dict(), path)


@torch.no_grad()
def score(path, n):
    model = load_model(DEFAULT_MODEL)
    c = model.config
    config = model_decode_config(model)
    net = CountRefiner()
    net.load_state_dict(torch.load(path))
    for i, style in enumerate(("brightfield", "fluorescence")):
        scenes = validation_scenes(n, style, VAL_SEED0 + 700 + 1000 * i)
        rows = {"as is": [], "refined": []}
        stats = {"as is": np.zeros(4), "refined": np.zeros(4)}
        for s in scenes:
            o = outputs(model, normalize(s.image))
            truth = torch.from_numpy(s.instances.sum(0).clip(0, 2))
            for name, logits in (("as is", o[1:4]), ("refined", net(o[None])[0])):
                p = torch.softmax(logits, 0)
                fg, cross = 1 - p[0], p[2]
                psi, seed = flow_votes(o[4:6], fg, cross, round(c.flow_steps * c.input_scale), c.coord_scale)
                count = torch.where(cross > 0.5, 2.0, torch.where(fg > config.fg_threshold, 1.0, 0.0))
                phi = psi - pixel_coordinates(*psi.shape[-2:], c.dim, c.coord_scale, origin=(0, 0))
                d = decode(psi, fg, seed, model.sigma * torch.ones_like(fg), config, count,
                           torch.stack([phi[1], phi[0]]) * c.coord_scale, o[0])
                rows[name].append((d.instances, d.scores))
                am = logits.argmax(0)
                stats[name] += [((am == 2) & (truth == 2)).sum(), ((am == 2) | (truth == 2)).sum(),
                                ((am > 0) & (truth > 0)).sum(), ((am > 0) | (truth > 0)).sum()]
        for name, r in rows.items():
            e = evaluate([a for a, _ in r], [b for _, b in r], [s.instances for s in scenes])
            st = stats[name]
            print(f"{style:12s} {name:8s} avS {e['avS']:.3f} S@0.5 {e['S@0.5']:.3f} S@0.9 {e['S@0.9']:.3f} "
                  f"crossing IoU {st[0] / st[1]:.3f} fg IoU {st[2] / st[3]:.3f}", flush=True)


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "gen":
        gen(int(sys.argv[2]), sys.argv[3])
    elif cmd == "fit":
        fit(sys.argv[2], float(sys.argv[3]), sys.argv[4], *sys.argv[5:6])
    else:
        score(sys.argv[2], int(sys.argv[3]))
