"""Choose the seeded decoder's thresholds on validation scenes (never on the test scenes).

    python benchmarks/tune_decoder.py [--model M.pt] [--scenes 4]

The network runs once per scene; each (kernel, merge, foreground) threshold triple then decodes
all scenes and is scored by avS over both styles. Validation seeds are VAL_SEED0 + 100 + i (the
test scenes of benchmarks/accuracy.py use TEST_SEED0). Writes a section of docs/benchmarks.md.
"""

import itertools
from pathlib import Path

from napari_semiconv.data.sources import VAL_SEED0, validation_scenes
from napari_semiconv.decode import DecodeConfig
from napari_semiconv.metrics import evaluate
from napari_semiconv.normalize import normalize
from napari_semiconv.registry import resolve_model
from napari_semiconv.segment import SegmentConfig, decode_outputs, predict_iter

GRID = {"kernel_threshold": (0.2, 0.3, 0.4, 0.5, 0.6, 0.7), "merge_threshold": (0.0, 0.15, 0.3, 0.45),
        "fg_threshold": (0.4, 0.5)}


def main(argv=None):
    from report import model_parser

    ap = model_parser(__doc__)
    ap.add_argument("--scenes", type=int, default=4, help="validation scenes per style")
    args = ap.parse_args(argv)
    model = resolve_model(args.model, args.device)
    scenes = [s for i, style in enumerate(("brightfield", "fluorescence"))
              for s in validation_scenes(args.scenes, style, seed0=VAL_SEED0 + 100 + 1000 * i)]
    outputs = [list(predict_iter(model, normalize(s.image), SegmentConfig()))[-1] for s in scenes]
    rows = []
    for values in itertools.product(*GRID.values()):
        config = DecodeConfig(**dict(zip(GRID, values)))
        decoded = [decode_outputs(o, config) for o in outputs]
        m = evaluate([d.instances for d in decoded], [d.scores for d in decoded], [s.instances for s in scenes])
        rows.append((m["avS"], m["S@0.5"], values))
        print(f"{values}: avS {m['avS']:.3f} S@0.5 {m['S@0.5']:.3f}", flush=True)
    rows.sort(reverse=True)
    default = tuple(getattr(DecodeConfig(), k) for k in GRID)
    lines = ["| kernel threshold | merge threshold | foreground threshold | avS | S@0.5 |", "|---" * 5 + "|"]
    for avs, s50, values in rows[:5] + [r for r in rows if r[2] == default]:
        lines.append("| " + " | ".join(f"{v:g}" for v in values) + f" | {avs:.3f} | {s50:.3f} |")
    section = ("## Decoder thresholds (validation scenes)\n\n"
               f"Best five of {len(rows)} threshold triples on {len(scenes)} validation scenes ({args.scenes} per "
               f"style, seeds VAL_SEED0 + 100 + i), and the current default (last row). Model: "
               f"`{getattr(model, 'metadata', {}).get('path', 'shipped default')}`.\n\n" + "\n".join(lines) +
               f"\n\nCommand: `python benchmarks/tune_decoder.py --scenes {args.scenes}`\n")
    print(section)
    from report import replace_section

    replace_section(Path(args.report), "## Decoder thresholds", section)


if __name__ == "__main__":
    main()
