"""U-Net backbone: a fully convolutional feature extractor for any H, W (inputs are padded)."""

import torch
import torch.nn.functional as F
from torch import nn


def group_count(channels: int) -> int:
    """GroupNorm groups for ``channels`` features: up to 8 groups of at least 4 channels."""
    return min(8, channels // 4) or 1


def _block(cin: int, cout: int) -> nn.Sequential:
    # circular padding: the image border gives the net no clue of absolute position, so Phi
    # must learn *relative* displacements (a net that can locate itself in a training crop
    # learns Phi = -u + c, which fails on larger images)
    groups = group_count(cout)
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False, padding_mode="circular"),
        nn.GroupNorm(groups, cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False, padding_mode="circular"),
        nn.GroupNorm(groups, cout),
        nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    """U-Net with ``depth`` downsamplings; channels ``width * 2**level`` capped at ``max_width``.

    Input ``(B, C, H, W)`` float32, output ``(B, width, H, W)`` features at full resolution.
    H and W need not be multiples of ``2**depth``: the input is padded (circularly) and cropped back.
    """

    def __init__(self, in_channels: int = 1, width: int = 16, depth: int = 4, max_width: int = 128):
        super().__init__()
        widths = [min(width * 2**i, max_width) for i in range(depth + 1)]
        self.depth = depth
        self.widths = widths  # channels per level, finest first
        self.down = nn.ModuleList([_block(in_channels, widths[0])])
        self.down.extend(_block(widths[i], widths[i + 1]) for i in range(depth))
        self.up = nn.ModuleList(
            _block(widths[i + 1] + widths[i], widths[i]) for i in reversed(range(depth))
        )
        self.out_channels = widths[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        m = 2**self.depth
        ph, pw = (-h) % m, (-w) % m
        if ph or pw:
            mode = "circular" if h >= ph and w >= pw else "replicate"
            x = F.pad(x, (0, pw, 0, ph), mode=mode)
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        x = skips.pop()
        for block in self.up:
            skip = skips.pop()
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], dim=1))
        return x[..., :h, :w]


class Refine(nn.Module):
    """Residual blocks of dilated 3x3 convolutions on ``(B, c, h, w)`` features, shape kept.

    Block ``i`` has dilation ``2 ** (i + 1)`` (2, 4, 8, ... px of its input): wide context at the
    backbone's finest level, where two crossing worms are still apart (deeper levels blur them together).
    Each block's last convolution starts at zero, so a model given blocks first computes what it did without.
    """

    def __init__(self, channels: int, blocks: int, inner: int = 32):
        super().__init__()
        self.blocks = nn.ModuleList()
        for i in range(blocks):
            d = 2 ** (i + 1)
            last = nn.Conv2d(inner, channels, 3, padding=d, dilation=d, padding_mode="circular")
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
            self.blocks.append(nn.Sequential(
                nn.Conv2d(channels, inner, 3, padding=d, dilation=d, bias=False, padding_mode="circular"),
                nn.GroupNorm(group_count(inner), inner), nn.ReLU(inplace=True), last))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:  # loop over blocks (a few)
            x = x + block(x)
        return x
