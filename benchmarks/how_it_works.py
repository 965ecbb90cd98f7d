"""The README's "how it works" figure, from a real segmentation of the brightfield sample scene.

    python benchmarks/how_it_works.py [--model M.pt]

Four panels: the image; the displacement field Phi^g (arrows from pixels to the point their worm's
pixels vote for); the pixels in embedding space (Psi's spatial dims, where each worm is a tight
cluster), coloured by the worm the decoder gave them; the resulting worms. Writes
docs/images/how_it_works.png.
"""

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from report import model_parser

from napari_semiconv._sample_data import brightfield_scene
from napari_semiconv.affinity import embedding_points
from napari_semiconv.registry import resolve_model
from napari_semiconv.segment import segment

OUT = Path(__file__).resolve().parents[1] / "docs" / "images" / "how_it_works.png"


def main(argv=None):
    args = model_parser(__doc__).parse_args(argv)
    model = resolve_model(args.model, args.device)
    image = brightfield_scene()[0][0]
    result = segment(model, image)
    rng = np.random.default_rng(0)
    colours = rng.random((int(result.labels.max()) + 1, 3)) * 0.8 + 0.2
    colours[0] = 0
    fig = Figure(figsize=(16, 4.2))
    axes = fig.subplots(1, 4)
    axes[0].imshow(image, cmap="gray")
    axes[0].set_title("image")
    axes[1].imshow(image, cmap="gray")
    rows, cols = np.mgrid[4 : image.shape[0] : 12, 4 : image.shape[1] : 12]
    fg = result.foreground[rows, cols] > 0.5
    r, c = rows[fg], cols[fg]
    dy, dx = result.displacement[0][r, c], result.displacement[1][r, c]
    axes[1].quiver(c, r, dx, dy, color=colours[result.labels[r, c]], angles="xy", scale_units="xy", scale=1,
                   width=0.002, headwidth=4)
    axes[1].set_title("displacement field: where each pixel votes")
    pts = embedding_points(result, max_points=6000)
    axes[2].scatter(pts["spatial"][:, 0], pts["spatial"][:, 1], s=1, c=colours[pts["label"]])
    axes[2].set_xlim(0, image.shape[1])
    axes[2].set_ylim(image.shape[0], 0)
    axes[2].set_aspect("equal")
    axes[2].set_title("pixels in embedding space (Psi = Phi + u)")
    axes[3].imshow(colours[result.labels])
    axes[3].set_title(f"{len(result.scores)} worms (kernel clustering)")
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(OUT, dpi=70)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
