"""Does the joiner overfit its training pairs? The pairs cached by fit_joiner.py (--cache) are split by patch
(fit_joiner.held_out: one patch in five, drawn at random, seed 0, is held out); a joiner trains on the rest as
fit_joiner.train_joiner does, on one thread, and every EVERY s of training the held-out pairs' log loss and AUC are
printed with the mean training loss.
With SECONDS 0 the shipped model's joiner is scored on the held-out pairs instead.
usage: python docs/training/s35/joiner_curve.py CACHE SECONDS EVERY [--relational]"""
import sys

import torch
import torch.nn.functional as F
from scipy.stats import rankdata

sys.path.insert(0, "benchmarks")
from fit_joiner import held_out, train_joiner

torch.set_num_threads(1)
pairs = torch.load(sys.argv[1], weights_only=True)
seconds, every, relational = float(sys.argv[2]), float(sys.argv[3]), "--relational" in sys.argv
train, test = held_out(pairs, 0.2)
crops, feats, labels, arms = (test[k] for k in ("crops", "features", "labels", "arms"))
print(f"{len(train['labels'])} training pairs, {len(labels)} held out ({labels.mean():.2f} of one worm); "
      f"{'relational' if relational else 'plain'} joiner", flush=True)


def watch(net, spent, train_loss):
    with torch.no_grad():
        logit = net(crops, feats, arms)
    loss = F.binary_cross_entropy_with_logits(logit, labels).item()
    ranks = rankdata(logit.numpy())
    pos = labels.numpy() > 0.5
    auc = (ranks[pos].sum() - pos.sum() * (pos.sum() + 1) / 2) / (pos.sum() * (~pos).sum())
    print(f"{spent:6.0f} s: training loss {train_loss:.4f}, held-out loss {loss:.4f}, AUC {auc:.4f}", flush=True)


if seconds > 0:
    train_joiner(train, seconds, relational, watch=watch, every=every)
else:
    from napari_semiconv.decode import model_decode_config
    from napari_semiconv.model import load_model
    from napari_semiconv.models import DEFAULT_MODEL

    print("the shipped model's joiner:", end=" ")
    watch(model_decode_config(load_model(DEFAULT_MODEL)).joiner.net, 0, float("nan"))
