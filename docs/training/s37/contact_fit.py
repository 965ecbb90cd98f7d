"""A joiner fitted on crossing patches and contacts together (see contact_lab.py): the contact pairs of N training
scenes per style (fit_joiner's seeds, JOIN_SEED0 + i: the scenes the shipped joiner's cache holds), labelled as
fit_joiner labels crossing pairs, added to the crossing pairs of CACHE (fit_joiner --cache), trained from the shipped
joiner for SECONDS with 20 % of the patches held out (kept at the lowest held-out loss, checked each minute). With
CACHE "-", on the contact pairs alone (a joiner for contacts only, beside the shipped one for crossings).

    python docs/training/s37/contact_fit.py N SECONDS CACHE CONTACTS.pt OUT.pt [SKIP]

(SKIP: the first SKIP training scenes per style are skipped when the contact pairs are collected.)
"""

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from contact_lab import extended_pairs
from fit_joiner import JOIN_SEED0, STYLES, fit_kept, owners

from napari_semiconv.data.synthetic import SceneConfig, make_scene
from napari_semiconv.decode import model_decode_config
from napari_semiconv.joining import pair_arms
from napari_semiconv.registry import resolve_model
from napari_semiconv.segment import decode_outputs
from napari_semiconv.threshold_search import forward_all


def contact_pairs(model, config, seeds) -> dict:
    """The labelled contact pairs of the scenes ``seeds``: (seed, style) each, made and run one at a time."""
    crops, feats, labels, arms, patch = [], [], [], [], []
    n_arms = n_patches = 0
    for seed, style in seeds:
        scene = make_scene(seed, SceneConfig(style=style))
        out = forward_all(model, [scene.image])[0]
        multi = (out["count"] >= 2).cpu().numpy()
        pieces = decode_outputs(out, config).instances & ~multi
        patches, pairs, is_contact = extended_pairs(pieces, multi, out["image"].cpu().numpy())
        own = owners(pieces, scene.instances)
        keep = [p for p, c in zip(pairs, is_contact) if c]
        for k, a, b, x, c in keep:
            crops.append(c)
            feats.append(torch.from_numpy(x))
            labels.append(float(own[patches[k].arms[a].piece] == own[patches[k].arms[b].piece]))
            patch.append(n_patches + k)
        if keep:
            arms.append(pair_arms(patches, keep) + n_arms)
        n_arms += sum(len(p.arms) for p in patches)
        n_patches += len(patches)
    return {"crops": torch.stack(crops), "features": torch.stack(feats), "labels": torch.tensor(labels),
            "arms": torch.cat(arms), "patch": torch.tensor(patch)}


def joined(a: dict, b: dict) -> dict:
    """Two sets of labelled pairs as one (b's arm and patch ids moved past a's; patch ids renumbered 0..n-1)."""
    out = {k: torch.cat([a[k], b[k] + (int(a[k].max()) + 1 if k in ("arms", "patch") else 0)])
           for k in ("crops", "features", "labels", "arms", "patch")}
    out["patch"] = torch.unique(out["patch"], return_inverse=True)[1]
    return out


def main(n: int, seconds: float, cache: str, contacts_file: str, out: str, skip: int = 0) -> None:
    torch.set_num_threads(2)
    model = resolve_model(None, "cpu")
    plain = replace(model_decode_config(model), min_score=0.0, joiner=None, rescorer=None, pool=False)
    if Path(contacts_file).exists():
        touch = torch.load(contacts_file, weights_only=True)
    else:
        seeds = [(JOIN_SEED0 + 10**5 * i + skip + j, style) for i, style in enumerate(STYLES) for j in range(n)]
        touch = contact_pairs(model, plain, seeds)
        torch.save(touch, contacts_file)
    print(f"{len(touch['labels'])} contact pairs ({touch['labels'].mean():.2f} of one worm)", flush=True)
    if cache == "-":
        pairs = touch
    else:
        crossing = torch.load(cache, weights_only=True)
        print(f"{len(crossing['labels'])} crossing pairs ({crossing['labels'].mean():.2f} of one worm)", flush=True)
        pairs = joined(crossing, touch)
    order = torch.argsort(pairs["patch"], stable=True)  # a patch's pairs consecutive (held_loss runs whole patches)
    pairs = {k: v[order] for k, v in pairs.items()}
    net, kept = fit_kept(pairs, 0.2, seconds, False, model_decode_config(model).joiner.net)
    print(f"kept after {kept:.0f} s", flush=True)
    torch.save({"state_dict": net.state_dict(), "kept_s": kept}, out)
    np.save(out + ".labels.npy", touch["labels"].numpy())


if __name__ == "__main__":
    main(int(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5],
         int(sys.argv[6]) if len(sys.argv) > 6 else 0)
