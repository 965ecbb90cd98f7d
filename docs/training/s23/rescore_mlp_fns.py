"""The scorers of rescore_mlp.py, shared with rescore_shape.py. When the logs were made, fit_rescorer fitted the
logistic model by L-BFGS; it now fits it (hidden=()) by AdamW, as the network."""
import numpy as np
import torch
import torch.nn.functional as F

from napari_semiconv.rescoring import fit_rescorer


def mlp(x, y, hidden=32, steps=3000, wd=1e-3, seed=0):
    torch.manual_seed(seed)
    x, y = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.float32)
    mean, scale = x.mean(0), x.std(0).clamp_min(1e-6)
    net = torch.nn.Sequential(torch.nn.Linear(x.shape[1], hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, hidden),
                              torch.nn.ReLU(), torch.nn.Linear(hidden, 1))
    opt = torch.optim.AdamW(net.parameters(), 3e-3, weight_decay=wd)
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = 1.5e-3 * (1 + np.cos(np.pi * step / steps))
        loss = F.binary_cross_entropy_with_logits(net((x - mean) / scale)[:, 0], y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    return lambda f: torch.sigmoid(net((torch.as_tensor(f, dtype=torch.float32) - mean) / scale)[:, 0]).detach().numpy()


def logistic(x, y):
    r = fit_rescorer(x, y, hidden=())
    return lambda f: r(torch.as_tensor(f, dtype=torch.float32)).numpy()


