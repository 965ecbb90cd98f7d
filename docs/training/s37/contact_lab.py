"""Pieces that touch outside the crossing patches, judged by a joiner at their contact (issue 14; session 34's
oracle: joining such pieces where the truth joins them, +0.01 / +0.04). Every pixel of a piece within WIDTH px of
another piece, and farther than CLEAR px from the pixels counted 2+, is a *contact*; contacts of at least MIN_BAND px
become patches of their own beside the crossing patches (their pixels taken from the pieces while arms are found,
given back afterwards), so the joiner's candidate pairs, probabilities and joinings (the pool) include them.

    python docs/training/s37/contact_lab.py N [JOINER.pt]

N fields per style of benchmarks/bakeoff.py score (VAL_SEED0 + 1000 + i; the network once per field); the shipped
model as it is, then with contacts judged by its own joiner, then (JOINER.pt given: a state dict saved by
contact_fit.py) by a joiner fitted on contacts (crossing patches still by the shipped one). Run (contact_lab.log,
contact_lab2.log) with session 33's model as the shipped one (git show f469397:src/napari_semiconv/models/default.pt),
whose joiner has no contact network.
"""

import sys

import numpy as np
import torch
from joint_lab import score
from scipy import ndimage as ndi

from napari_semiconv import joining

WIDTH = 2  # px
CLEAR = 4  # px
MIN_BAND = 12  # px
SHIPPED = joining.join_readings


def contacts(pieces: np.ndarray, multi: np.ndarray) -> np.ndarray:
    """(H, W) bool: the contact pixels of ``pieces (N, H, W) bool`` (none holds a pixel of ``multi (H, W) bool``)."""
    labels = np.einsum("nhw,n->hw", pieces, np.arange(1, len(pieces) + 1, dtype=np.int32))
    size = 2 * WIDTH + 1
    high = ndi.maximum_filter(labels, size)
    low = ndi.minimum_filter(np.where(labels > 0, labels, np.iinfo(np.int32).max), size)
    band = (labels > 0) & (high != low)
    if multi.any():
        band &= ndi.distance_transform_edt(~multi) > CLEAR
    parts, n = ndi.label(band, np.ones((3, 3)))
    if n == 0:
        return band
    sizes = np.bincount(parts.ravel(), minlength=n + 1)
    return (sizes >= MIN_BAND)[parts] & band


def extended_pairs(pieces, multi, image):
    """candidate_pairs with the contacts as patches too: (patches, pairs, is_contact (M,) bool)."""
    band = contacts(pieces, multi)
    labels, patches, pairs = joining.candidate_pairs(pieces & ~band[None], multi | band, image)
    at_contact = np.array([bool(band[labels == patches[k].label].any()) for k in range(len(patches))], bool)
    is_contact = np.array([at_contact[p[0]] for p in pairs], bool)
    return patches, pairs, is_contact


def make_readings(contact_joiner=None):
    @torch.no_grad()
    def readings(pieces, multi, image, joiner, thresholds):
        patches, pairs, is_contact = extended_pairs(pieces, multi, image)
        prob = joining.pair_probabilities(joiner, patches, pairs)
        if contact_joiner is not None and is_contact.any():
            prob[is_contact] = joining.pair_probabilities(contact_joiner, patches,
                                                          [p for p, c in zip(pairs, is_contact) if c])
        order = np.argsort(-prob)
        return np.stack([joining.join_in_order(len(pieces), patches, pairs, order[prob[order] >= t])
                         for t in thresholds])
    return readings


def main(n: int, fitted: str | None) -> None:
    variants = [("shipped", SHIPPED), ("contacts, shipped joiner", make_readings())]
    if fitted:
        stored = torch.load(fitted, weights_only=True)
        net = joining.JoinerNet()
        net.load_state_dict(stored["state_dict"])
        variants.append((f"contacts, fitted joiner ({fitted})", make_readings(joining.Joiner(net.eval(), 0.5))))
    score(variants, n)


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else None)
