"""Segment a large mosaic tile by tile: seconds, peak memory, worms found.

    python benchmarks/mosaic.py [--size 4096] [--model M.pt] [--device cpu]

The mosaic is a grid of held-out synthetic brightfield scenes (seeds TEST_SEED0 + 50000 + i),
each normalized before tiling so the mosaic looks like one acquisition, cut to size x size.
Peak memory is the process's maximum resident set size (it includes the mosaic, the model and
the per-pixel outputs: foreground, seed map, displacement, labels). Writes a section of
docs/benchmarks.md.
"""

import platform
import resource
import time
from pathlib import Path

import numpy as np
import torch

from napari_semiconv.data.sources import TEST_SEED0
from napari_semiconv.data.synthetic import FIELD, SceneConfig, make_scene
from napari_semiconv.normalize import normalize
from napari_semiconv.registry import resolve_model
from napari_semiconv.segment import SegmentConfig, segment


def mosaic(size: int) -> tuple[np.ndarray, int]:
    """A ``(size, size)`` float32 mosaic of normalized scenes and the number of worms with pixels in it."""
    rows, cols = -(-size // FIELD[0]), -(-size // FIELD[1])
    grid, worms = [], 0
    for r in range(rows):
        line = []
        for c in range(cols):
            scene = make_scene(TEST_SEED0 + 50000 + r * cols + c, SceneConfig(style="brightfield"))
            line.append(normalize(scene.image))
            seen = scene.instances[:, : size - r * FIELD[0], : size - c * FIELD[1]]
            worms += int(seen.any((1, 2)).sum())
        grid.append(np.concatenate(line, 1))
    return np.concatenate(grid, 0)[:size, :size], worms


def main(argv=None):
    from report import model_parser

    ap = model_parser(__doc__)
    ap.add_argument("--size", type=int, default=4096)
    args = ap.parse_args(argv)
    model = resolve_model(args.model, args.device)
    image, worms = mosaic(args.size)
    config = SegmentConfig(keep_embedding=False)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    result = segment(model, image, config)
    secs = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    n = len(result.instances)
    dense_gb = n * image.size / 1e9
    device = next(model.parameters()).device
    section = (
        "## Mosaics: tile-by-tile segmentation\n\n"
        f"A {args.size} x {args.size} mosaic of held-out brightfield scenes ({worms} worms, some cut "
        f"by its right and bottom edges), tiles of {config.tile} px with {config.tile_overlap} px overlap, decoded tile by tile; "
        "each worm is kept by the tile whose core holds its centroid, instances are stored in their bounding "
        "boxes.\n\n"
        "| worms found | seconds | peak RSS (MB) | RSS before segmenting (MB) | a dense (N, H, W) stack would take |\n"
        "|---|---|---|---|---|\n"
        f"| {n} | {secs:.1f} | {peak:.0f} | {rss0:.0f} | {dense_gb:.1f} GB |\n\n"
        f"Machine: {platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}, "
        f"device {device}. Command: `python benchmarks/mosaic.py --size {args.size}`\n"
    )
    print(section)
    from report import replace_section

    replace_section(Path(args.report), "## Mosaics", section)


if __name__ == "__main__":
    main()
