"""Can the rescorer learn a shifted domain from a user's two labelled images? benchmarks/finetune.py's domains
(fluorescence at 1.7x, brightfield at 2x) with its --validation seeds (VAL_SEED0 + 100 k + 5000 + i to fine-tune on,
+ 6000 + i to score on; never the test seeds): the shipped model size-matched to the labelled worms, its pool's
candidates in the two labelled images (their label images, as fine-tuning reads them: check_annotations) labelled with
their quality (the fraction of avS's IoU thresholds passed), and the rescorer
- as shipped;
- fine-tuned from the shipped weights on those candidates (AdamW, the shipped standardisation kept, a pull toward
  the shipped weights of strength LAMBDA, STEPS full-batch steps);
- fitted afresh on them (rescoring.fit_rescorer);
each scored on the domain's other images at the cuts CUTS.
usage: python docs/training/s32/rescorer_user.py TEST [LAMBDA ...]"""
import sys
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))
from finetune import DOMAINS
from fit_rescorer import forwards, labelled_features, scored

from napari_semiconv.data.sources import VAL_SEED0
from napari_semiconv.data.synthetic import make_scene
from napari_semiconv.decode import model_decode_config
from napari_semiconv.finetune import check_annotations
from napari_semiconv.model import load_model
from napari_semiconv.models import DEFAULT_MODEL
from napari_semiconv.rescoring import Rescorer, fit_rescorer
from napari_semiconv.worm_size import size_scale, trained_worm_width

torch.set_num_threads(2)
CUTS = (0.1, 0.2, 0.3, 0.4, 0.5)
STEPS = 300


def tuned(rescorer: Rescorer, x: np.ndarray, y: np.ndarray, strength: float) -> Rescorer:
    """``rescorer`` fine-tuned on ``x (M, F)``, ``y (M,)`` with an L2 pull of ``strength`` toward its own weights."""
    mean, scale = torch.tensor(rescorer.mean), torch.tensor(rescorer.scale)
    start = [torch.tensor(v) for w, b in rescorer.layers for v in (w, b)]
    params = [p.clone().requires_grad_() for p in start]
    opt = torch.optim.AdamW(params, 3e-3, weight_decay=0.0)
    z0 = (torch.as_tensor(x, dtype=torch.float32) - mean) / scale
    target = torch.as_tensor(y, dtype=torch.float32)
    for _ in range(STEPS):
        z = z0
        for i in range(0, len(params), 2):
            z = z @ params[i].T + params[i + 1]
            z = z if i == len(params) - 2 else z.clamp_min(0)
        loss = F.binary_cross_entropy_with_logits(z[:, 0], target) + strength * sum(
            ((p - q) ** 2).sum() for p, q in zip(params, start))
        opt.zero_grad()
        loss.backward()
        opt.step()
    layers = tuple((tuple(map(tuple, params[i].detach().tolist())), tuple(params[i + 1].detach().tolist()))
                   for i in range(0, len(params), 2))
    return replace(rescorer, layers=layers)


def main():
    n_test = int(sys.argv[1])
    strengths = [float(v) for v in sys.argv[2:]] or [0.01, 0.001]
    base = load_model(DEFAULT_MODEL)
    shipped = model_decode_config(base)
    plain = replace(shipped, rescorer=None, pool=False, min_score=0.0, features=True, candidates=True)
    for k, (name, scene) in enumerate(DOMAINS.items()):
        seed0 = VAL_SEED0 + 100 * k
        train = [make_scene(seed0 + 5000 + i, scene) for i in range(2)]
        test = [make_scene(seed0 + 6000 + i, scene) for i in range(n_test)]
        images, stacks, _ = check_annotations([s.image for s in train], [s.labels for s in train])
        scale = size_scale(stacks, trained_worm_width(base), base.config.input_scale)
        user = [SimpleNamespace(image=im, instances=st) for im, st in zip(images, stacks)]
        x, y = labelled_features(base, plain, user, [scale] * len(user))
        outputs, mags = forwards(base, test, [scale] * n_test), [scale] * n_test
        variants = [("shipped", shipped.rescorer)]
        variants += [(f"tuned, pull {s:g}", tuned(shipped.rescorer, x, y, s)) for s in strengths]
        variants += [("fitted afresh", fit_rescorer(x, y))]
        print(f"{name}: input scale {scale:.2f}, {len(y)} candidates on the 2 labelled images "
              f"({(y > 0).mean():.2f} match a worm)", flush=True)
        for label, rescorer in variants:
            rows = scored(outputs, test, mags, replace(plain, rescorer=rescorer, pool=True, candidates=False), CUTS)
            print(f"  {label:18s} " + " ".join(f"{c:g}: {r['avS']:.3f}" for c, r in zip(CUTS, rows)), flush=True)


if __name__ == "__main__":
    main()
