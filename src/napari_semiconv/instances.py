"""Worm instances of one plane, stored sparsely: each mask inside its bounding box.

A dense ``(N, H, W)`` bool stack of a 4096 x 4096 mosaic with a thousand worms would take 16 GB;
kept in their boxes the same masks take a few MB. Masks may overlap (crossing worms).
"""

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Instances:
    """``N`` bool masks on an ``(H, W)`` plane, mask ``i`` stored as ``crops[i]`` inside ``boxes[i]``."""

    shape: tuple[int, int]  # (H, W) of the plane
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.int64))  # (N, 4) r0, c0, r1, c1
    crops: list[np.ndarray] = field(default_factory=list)  # N (r1 - r0, c1 - c0) bool

    def __len__(self) -> int:
        return len(self.crops)

    @classmethod
    def from_stack(cls, stack: np.ndarray, offset: tuple[int, int] = (0, 0),
                   shape: tuple[int, int] | None = None) -> "Instances":
        """From an ``(N, h, w)`` bool stack placed at ``offset`` (row, col) of a plane of ``shape``.

        Instance ``i`` stays instance ``i`` (an empty mask gets an empty box).
        """
        boxes, crops = [], []
        for m in stack:  # one bounding box per instance
            rows, cols = np.nonzero(m.any(1))[0], np.nonzero(m.any(0))[0]
            r0, r1 = (rows[0], rows[-1] + 1) if len(rows) else (0, 0)
            c0, c1 = (cols[0], cols[-1] + 1) if len(cols) else (0, 0)
            boxes.append((r0 + offset[0], c0 + offset[1], r1 + offset[0], c1 + offset[1]))
            crops.append(np.ascontiguousarray(m[r0:r1, c0:c1]))
        return cls(tuple(shape or stack.shape[1:]), np.array(boxes, np.int64).reshape(-1, 4), crops)

    def mask(self, i: int) -> np.ndarray:
        """Instance ``i`` as an ``(H, W)`` bool mask."""
        out = np.zeros(self.shape, bool)
        r0, c0, r1, c1 = self.boxes[i]
        out[r0:r1, c0:c1] = self.crops[i]
        return out

    def to_stack(self) -> np.ndarray:
        """The dense ``(N, H, W)`` bool stack (mind the memory on big planes: N * H * W bytes)."""
        out = np.zeros((len(self), *self.shape), bool)
        for i, (r0, c0, r1, c1) in enumerate(self.boxes):
            out[i, r0:r1, c0:c1] = self.crops[i]
        return out

    def centroids(self) -> np.ndarray:
        """``(N, 2)`` float64 (row, col) centre of mass of each mask, in plane pixels (NaN if empty)."""
        out = np.full((len(self), 2), np.nan)
        for i, (crop, box) in enumerate(zip(self.crops, self.boxes)):
            if crop.any():
                out[i] = np.argwhere(crop).mean(0) + box[:2]
        return out
