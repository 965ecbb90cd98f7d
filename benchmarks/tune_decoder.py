"""Choose the seeded decoder's thresholds on validation scenes (never on the test scenes).

    python benchmarks/tune_decoder.py [--model M.pt] [--scenes 4]

The network runs once per scene; each (kernel, merge, foreground) threshold triple then decodes
all scenes, the instances scored under each minimum score are dropped, and each combination is
scored by avS over both styles (instances scored by the model's rescorer and a piece model's pieces joined by its joiner, where it has them). Validation seeds are VAL_SEED0 + 100 + i (the
test scenes of benchmarks/accuracy.py use TEST_SEED0). Writes a section of docs/benchmarks.md.
"""

import json
from pathlib import Path

from napari_semiconv.data.sources import VAL_SEED0, validation_scenes
from napari_semiconv.decode import model_decode_config
from napari_semiconv.model.io import read_model_file, save_model
from napari_semiconv.registry import resolve_model
from napari_semiconv.threshold_search import GRID, forward_all, search_thresholds


def main(argv=None):
    from report import model_name, model_parser

    ap = model_parser(__doc__)
    ap.add_argument("--scenes", type=int, default=4, help="validation scenes per style")
    ap.add_argument("--write", action="store_true", help="store the best thresholds in the model file (its "
                    "'decode' metadata, which segmentation uses unless told otherwise)")
    args = ap.parse_args(argv)
    model = resolve_model(args.model, args.device)
    scenes = [s for i, style in enumerate(("brightfield", "fluorescence"))
              for s in validation_scenes(args.scenes, style, seed0=VAL_SEED0 + 100 + 1000 * i)]
    outputs = forward_all(model, [s.image for s in scenes])
    found = search_thresholds(outputs, [s.instances for s in scenes], base=model_decode_config(model))
    rows = [(avs, s50, tuple(t.values())) for avs, s50, t in found]
    default = tuple(getattr(model_decode_config(model), k) for k in GRID)
    lines = ["| kernel threshold | merge threshold | foreground threshold | minimum score | avS | S@0.5 |",
             "|---" * 6 + "|"]
    for avs, s50, values in rows[:5] + [r for r in rows if r[2] == default]:
        lines.append("| " + " | ".join(f"{v:g}" for v in values) + f" | {avs:.3f} | {s50:.3f} |")
    section = ("## Decoder thresholds (validation scenes)\n\n"
               f"Best five of {len(rows)} threshold combinations on {len(scenes)} validation scenes ({args.scenes} per "
               f"style, seeds VAL_SEED0 + 100 + i), and the model's thresholds before this run (last row). Model: "
               f"`{model_name(model)}`.\n\n" + "\n".join(lines) +
               f"\n\nCommand: `python benchmarks/tune_decoder.py --scenes {args.scenes}"
               + (f" --model {args.model}" if args.model else "") + (" --write" if args.write else "") + "`\n")
    print(section)
    if args.write:
        path = Path(model.metadata["path"])
        payload = read_model_file(path)
        meta = {**payload["metadata"], "decode": found[0][2],
                "decode_choice": f"best avS ({found[0][0]:.3f}) of {len(found)} threshold combinations on {len(scenes)} "
                                 "validation scenes (benchmarks/tune_decoder.py)"}
        meta.pop("path", None)
        save_model(model, path, meta)
        card = path.with_suffix(".json")
        if card.exists():  # the model's card (train_default.py writes it) says the same
            card.write_text(json.dumps({**json.loads(card.read_text()), "decode": meta["decode"],
                                        "decode_choice": meta["decode_choice"]}, indent=2))
        print(f"wrote the thresholds {found[0][2]} into {path}")
    from report import replace_section

    replace_section(Path(args.report), "## Decoder thresholds", section)


if __name__ == "__main__":
    main()
