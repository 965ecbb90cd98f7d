"""Worm instances of one plane, stored sparsely: each mask inside its bounding box.

A dense ``(N, H, W)`` bool stack of a 4096 x 4096 mosaic with a thousand worms would take 16 GB;
kept in their boxes the same masks take a few MB. Masks may overlap (crossing worms).
"""

from dataclasses import dataclass, field

import numpy as np
from scipy.ndimage import map_coordinates


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

    @classmethod
    def join(cls, parts: list["Instances"], shape: tuple[int, int]) -> "Instances":
        """The instances of ``parts`` (on one plane of ``shape``) one after another."""
        boxes = np.concatenate([np.zeros((0, 4), np.int64), *(p.boxes for p in parts)])
        return cls(tuple(shape), boxes, [c for p in parts for c in p.crops])

    def select(self, index: np.ndarray) -> "Instances":
        """The instances ``index`` (an int array), in that order."""
        return Instances(self.shape, self.boxes[index].reshape(-1, 4), [self.crops[i] for i in index])

    def paint(self, rows: slice = slice(None), cols: slice = slice(None)) -> np.ndarray:
        """``(h, w)`` uint32 label image of the region ``rows`` x ``cols`` of the plane: ``i + 1`` where mask
        ``i`` is the first mask holding a pixel, 0 where none does. Only the masks whose boxes meet the
        region are touched, so a tile of a huge plane costs what its worms cost."""
        (r0, r1, _), (c0, c1, _) = rows.indices(self.shape[0]), cols.indices(self.shape[1])
        out = np.zeros((r1 - r0, c1 - c0), np.uint32)
        b = self.boxes
        for i in np.flatnonzero((b[:, 0] < r1) & (b[:, 2] > r0) & (b[:, 1] < c1) & (b[:, 3] > c0)):
            top, left = max(b[i, 0], r0), max(b[i, 1], c0)
            bottom, right = min(b[i, 2], r1), min(b[i, 3], c1)
            crop = self.crops[i][top - b[i, 0] : bottom - b[i, 0], left - b[i, 1] : right - b[i, 1]]
            view = out[top - r0 : bottom - r0, left - c0 : right - c0]
            view[crop & (view == 0)] = i + 1
        return out

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

    def resized(self, shape: tuple[int, int]) -> "Instances":
        """The masks on a plane of ``shape`` (H', W') covering the same field: each mask bilinearly interpolated at the
        new pixels' centres (as ``torch.nn.functional.interpolate(..., align_corners=False)`` maps them) and cut at
        0.5; one interpolation per mask, over its box."""
        fy, fx = shape[0] / self.shape[0], shape[1] / self.shape[1]
        boxes, crops = [], []
        for (r0, c0, r1, c1), crop in zip(self.boxes, self.crops):  # one interpolation per mask, not per pixel
            top, left = max(0, int(np.floor((r0 - 1) * fy))), max(0, int(np.floor((c0 - 1) * fx)))
            bottom, right = min(shape[0], int(np.ceil((r1 + 1) * fy))), min(shape[1], int(np.ceil((c1 + 1) * fx)))
            # in the padded crop's pixels; beyond the plane's outer pixel centres torch repeats the edge
            rows = np.clip((np.arange(top, bottom) + 0.5) / fy - 0.5, 0, self.shape[0] - 1) - (r0 - 1)
            cols = np.clip((np.arange(left, right) + 0.5) / fx - 0.5, 0, self.shape[1] - 1) - (c0 - 1)
            grid = np.meshgrid(rows, cols, indexing="ij")
            big = map_coordinates(np.pad(crop, 1).astype(np.float32), grid, order=1, mode="constant") > 0.5
            one = Instances.from_stack(big[None], (top, left), shape) if crop.any() else Instances(tuple(shape))
            boxes.append(one.boxes[0] if len(one) else np.zeros(4, np.int64))
            crops.append(one.crops[0] if len(one) else np.zeros((0, 0), bool))
        return Instances(tuple(shape), np.array(boxes, np.int64).reshape(-1, 4), crops)
