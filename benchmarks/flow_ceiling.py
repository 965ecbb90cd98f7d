"""What the flow decoder reaches when parts of the network's output are replaced by the truth.

    python benchmarks/flow_ceiling.py [--model M.pt] [--scenes 20] [--device cpu]

On validation scenes (seeds VAL_SEED0 + 5000 + i, never the test scenes) a flow model runs once per
scene; its three outputs that the decoder uses (the flow, the foreground probability, the crossing
probability: 2+ worms per pixel) are then swapped one by one for the true ones, and the decoder runs
with the model's stored thresholds. The true flow is :func:`napari_semiconv.flow.flow_target` with the
sinks where the model's training put them (kept ``SINK_CLEARANCE`` px clear of overlaps) and, for
comparison, with the sinks at the pixel nearest to the anchor (``sink_clearance=0``, the target of the
models before session 12). "All true" is the ceiling of the target and the decoder: what a perfect
network would score. Writes a section of docs/benchmarks.md.
"""

from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F

from napari_semiconv.data.sources import VAL_SEED0, validation_scenes
from napari_semiconv.decode import decode, model_decode_config
from napari_semiconv.errors import SemiconvError
from napari_semiconv.flow import SINK_CLEARANCE, flow_target, flow_votes
from napari_semiconv.losses import CROSSING_REACH
from napari_semiconv.metrics import evaluate
from napari_semiconv.normalize import normalize
from napari_semiconv.registry import resolve_model

# (row, flow: the sinks' clearance in px of the true flow or None = predicted, where the true flow replaces the
# predicted one (see _swapped), foreground true, crossings true); NO_CUT rows decode without the score cut
VARIANTS = (("predicted", None, "", False, False), ("true foreground", None, "", True, False),
            ("true crossings", None, "", False, True), ("true flow", SINK_CLEARANCE, "everywhere", False, False),
            ("true flow and crossings", SINK_CLEARANCE, "everywhere", False, True),
            ("true flow on single-worm pixels only", SINK_CLEARANCE, "single", False, False),
            ("true flow on single-worm pixels only, true crossings", SINK_CLEARANCE, "single", False, True),
            (f"true flow within {CROSSING_REACH} px of a crossing", SINK_CLEARANCE, "near", False, False),
            (f"true flow within {CROSSING_REACH} px of a crossing, true crossings", SINK_CLEARANCE, "near", False, True),
            (f"true flow farther than {CROSSING_REACH} px from crossings", SINK_CLEARANCE, "far", False, False),
            ("true flow where the predicted one points the wrong way (cosine < 0)", SINK_CLEARANCE, "wrong", False, False),
            ("all true, sinks at the anchor", 0, "everywhere", True, True),
            ("all true", SINK_CLEARANCE, "everywhere", True, True),
            ("all true, no score cut", SINK_CLEARANCE, "everywhere", True, True))
NO_CUT = "no score cut"  # the model's minimum score, chosen on its own outputs, drops true worms with few votes


def _swapped(pred: torch.Tensor, true: torch.Tensor, where: str, instances: np.ndarray) -> torch.Tensor:
    """``(2, H, W)`` flow (paired: (4, H, W)): ``true`` everywhere, or on the single-worm pixels of ``instances (N, H, W)`` that
    ``where`` names ("single": all, "near" / "far": within / beyond CROSSING_REACH px (a box) of a pixel in two
    worms, "wrong": where ``pred`` points away from ``true``), ``pred`` elsewhere (the pixels in two worms keep the
    predicted flow, which the true flow leaves at zero)."""
    if where == "everywhere":
        return true
    count = torch.from_numpy(instances.sum(0)).to(pred.device)
    near = F.max_pool2d((count >= 2).float()[None, None], 2 * CROSSING_REACH + 1, 1, CROSSING_REACH)[0, 0] > 0
    region = {"single": True, "near": near, "far": ~near, "wrong": (pred * true).sum(0) < 0}[where]
    return torch.where(((count == 1) & region)[None], true, pred)


def scene_stacks(model, scene) -> list[tuple[np.ndarray, np.ndarray]]:
    """One (instances (N, H, W) bool, scores (N,)) per variant of :data:`VARIANTS` for one scene."""
    out = model(torch.from_numpy(normalize(scene.image))[None, None].to(next(model.parameters()).device))
    pred = {"flow": out.phi[0], "fg": torch.sigmoid(out.fg_logit[0, 0]),
            "crossing": torch.softmax(out.count_logit[0], 0)[2]}
    ins = scene.instances
    device = pred["fg"].device
    true_fg = torch.from_numpy(ins.any(0).astype(np.float32)).to(device)
    true_cross = torch.from_numpy((ins.sum(0) >= 2).astype(np.float32)).to(device)
    config = model_decode_config(model)
    sigma = model.sigma.detach() * torch.ones_like(true_fg)
    stacks = []
    targets = {c: torch.from_numpy(flow_target(ins, scene.anchors, sink_clearance=c, pair=model.config.flow_pair)).to(device)
               for c in {v[1] for v in VARIANTS} - {None}}  # one geodesic per worm and clearance, not per row
    for name, clearance, where, fg_true, cross_true in VARIANTS:
        flow = pred["flow"] if clearance is None else _swapped(pred["flow"], targets[clearance], where, ins)
        fg = true_fg if fg_true else pred["fg"]
        crossing = true_cross if cross_true else pred["crossing"]
        psi, seed = flow_votes(flow, fg, crossing, round(model.config.flow_steps * model.config.input_scale),
                               model.config.coord_scale)
        count = torch.where(crossing > 0.5, 2, torch.where(fg > config.fg_threshold, 1, 0)).float()
        found = decode(psi, fg, seed, sigma, replace(config, min_score=0.0) if NO_CUT in name else config, count)
        stacks.append((found.instances, found.scores))
    return stacks


def main(argv=None):
    from report import model_name, model_parser, publish_model_section

    ap = model_parser(__doc__)
    ap.add_argument("--scenes", type=int, default=20, help="validation scenes per style")
    args = ap.parse_args(argv)
    model = resolve_model(args.model, args.device)
    if model.config.target != "flow":
        raise SemiconvError(f"{model_name(model)} is a {model.config.target} model: this benchmark needs a flow model")
    columns = []
    with torch.no_grad():
        for i, style in enumerate(("brightfield", "fluorescence")):
            scenes = validation_scenes(args.scenes, style, seed0=VAL_SEED0 + 5000 + 1000 * i)
            rows = [scene_stacks(model, s) for s in scenes]
            columns.append([evaluate([r[j][0] for r in rows], [r[j][1] for r in rows], [s.instances for s in scenes])
                            for j in range(len(VARIANTS))])
            print(style, " ".join(f"{c['avS']:.3f}" for c in columns[-1]), flush=True)
    lines = ["| what is true | brightfield avS | S@0.5 | fluorescence avS | S@0.5 |", "|---|---|---|---|---|"]
    lines += [f"| {v[0]} | " + " | ".join(f"{c[j]['avS']:.3f} | {c[j]['S@0.5']:.3f}" for c in columns) + " |"
              for j, v in enumerate(VARIANTS)]
    publish_model_section(
        args, "## What a perfect flow network would reach: the decoder fed true outputs",
        f"{args.scenes} validation scenes per style (seeds VAL_SEED0 + 5000 + i), model `{model_name(model)}`, "
        "its stored decoder thresholds. Each column replaces some of the network's outputs (flow, foreground, "
        "crossing probability) by the truth; the true flow is the training target with the sinks kept "
        f"{SINK_CLEARANCE} px clear of overlaps, or at the worm's pixel nearest to its anchor (the target before "
        "session 12); rows that say where replace the predicted flow there only (on single-worm pixels: the true flow "
        "is zero on pixels in two worms, which keep the predicted flow). 'All true' is the ceiling of the target and "
        "the decoder at the model's thresholds; the last row decodes it without the model's score cut (minimum "
        f"score {model_decode_config(model).min_score:g}, chosen on predicted outputs, where it drops fragments).\n\n" + "\n".join(lines),
        "flow_ceiling.py", f"--scenes {args.scenes}")

if __name__ == "__main__":
    main()
