"""A second look at the worms-per-pixel map of a flow model: a small convolutional net on the full-resolution image,
the count head's 0 / 1 / 2+ logits and the flow that corrects those logits.

The count head reads the image through two 3 x 3 convolutions beside the backbone's half-resolution features, so
it misses parts of crossings (where the pieces of a piece model end) and blurs worms' edges. Given what the
whole network concluded (the logits and the flow, whose directions part where two worms cross), a net with a
few dozen pixels of full-resolution context can mend much of that; it trains alone on a model's cached outputs
(``benchmarks/fit_count_refiner.py``), in minutes on a CPU. Its last layer starts at zero, so a model given a
refiner first computes what it did without one.
"""

import torch
import torch.nn.functional as F
from torch import nn

INPUTS = 6  # image (1), count logits (3), flow (dx, dy)


class CountRefiner(nn.Module):
    """``(B, 6, H, W)`` image, count logits (0, 1, 2+) and flow (dx, dy) -> ``(B, 3, H, W)`` corrected count logits.

    A full-resolution layer of ``channels``, three layers of ``inner`` channels at half resolution (dilations 1, 2,
    4: about 35 px of context) and a full-resolution layer on both; the output is added to the input logits.
    """

    def __init__(self, channels: int = 8, inner: int = 24):
        super().__init__()
        self.inp = nn.Sequential(nn.Conv2d(INPUTS, channels, 3, padding=1), nn.ReLU(inplace=True))
        self.down = nn.Sequential(nn.Conv2d(channels, inner, 3, stride=2, padding=1), nn.ReLU(inplace=True),
                                  nn.Conv2d(inner, inner, 3, padding=2, dilation=2), nn.ReLU(inplace=True),
                                  nn.Conv2d(inner, inner, 3, padding=4, dilation=4), nn.ReLU(inplace=True))
        self.out = nn.Sequential(nn.Conv2d(channels + inner, channels, 3, padding=1), nn.ReLU(inplace=True),
                                 nn.Conv2d(channels, 3, 1))
        nn.init.zeros_(self.out[-1].weight)
        nn.init.zeros_(self.out[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.inp(x)
        b = F.interpolate(self.down(a), size=[a.shape[-2], a.shape[-1]], mode="bilinear", align_corners=False)
        return x[:, 1:4] + self.out(torch.cat([a, b], 1))
