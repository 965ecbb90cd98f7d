"""What the benchmark scripts share: their model/device/report options and writing their section of the report."""

import argparse
import platform
from pathlib import Path

REPORT = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def model_parser(doc: str) -> argparse.ArgumentParser:
    """An argument parser with ``--model`` (default: the shipped one), ``--device`` and ``--report``."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="model file (default: the shipped model)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--report", default=str(REPORT))
    return ap


def cpu_name() -> str:
    """The machine and its processor, e.g. ``x86_64 (Intel(R) Xeon(R) Processor)``: timings differ by processor."""
    info = Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").is_file() else []
    model = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")),
                 platform.processor())
    return f"{platform.machine()} ({model})" if model else platform.machine()


def replace_section(report: Path, heading: str, section: str) -> None:
    """Put ``section`` in ``report`` where the one starting with ``heading`` is (else at the end)."""
    text = report.read_text() if report.exists() else "# Benchmarks\n"
    parts = text.split("\n## ")
    sections = ["## " + p.strip() + "\n" for p in parts[1:]]
    at = next((i for i, p in enumerate(sections) if p.startswith(heading)), len(sections))
    sections[at:at + 1] = [section.strip() + "\n"]
    report.write_text(parts[0].rstrip() + "\n\n" + "\n".join(sections))


def publish_model_section(args, heading: str, body: str, script: str, options: str) -> None:
    """Print and write (to ``args.report``) the section ``heading`` + ``body`` of a model benchmark, closed by
    the command that made it (``python benchmarks/<script> <options>``, with ``--model`` where one was given)
    and the machine."""
    import torch

    section = (f"{heading}\n\n{body}\n\nCommand: `python benchmarks/{script} {options}"
               + (f" --model {args.model}" if args.model else "") + "` "
               f"({cpu_name()}, torch {torch.__version__}, {torch.get_num_threads()} threads).\n")
    print(section)
    replace_section(Path(args.report), heading, section)


def chosen(rows: dict, count: int) -> int:
    """The candidate (0 .. count - 1) with the highest avS summed over the styles, where ``rows`` holds for each style a
    list of metrics dicts: a reference row first, then one per candidate."""
    return max(range(count), key=lambda j: sum(style[j + 1]["avS"] for style in rows.values()))


def style_table(first: str, names: list[str], rows: dict, metrics: tuple[str, ...]) -> list[str]:
    """The lines of a markdown table with one row per name and, for each style of ``rows`` ({style: [metrics dict per
    name]}), a column per metric (3 decimals); ``first`` heads the names' column."""
    lines = [f"| {first} | " + " | ".join(f"{style} " + " | ".join(metrics) for style in rows) + " |",
             "|---|" + "---|" * len(metrics) * len(rows)]
    return lines + [f"| {name} | " + " | ".join(f"{values[j][m]:.3f}" for values in rows.values() for m in metrics) + " |"
                    for j, name in enumerate(names)]


def store_part(path: str, model, key: str, stored: dict, card: dict) -> None:
    """Store a learned decoder part (``stored``, its metadata entry) under ``key`` in the model file at ``path`` and
    say what it is (``card``) in the model's card beside it where there is one (the weights stay in the file)."""
    import json

    from napari_semiconv.model.io import read_model_file, save_model

    save_model(model, path, {**read_model_file(path)["metadata"], key: stored})
    file = Path(path).with_suffix(".json")
    if file.exists():
        file.write_text(json.dumps({**json.loads(file.read_text()), key: card}, indent=2))


def model_name(model) -> str:
    """Where ``model`` came from, as a path relative to the repository (never a machine's absolute path)."""
    path = Path(getattr(model, "metadata", {}).get("path", "the shipped default model"))
    try:
        return str(path.resolve().relative_to(REPORT.parents[1]))
    except ValueError:
        return path.name


def portable(command: str) -> str:
    """A command line with every absolute path of the machine that ran it cut to its last part
    (``/tmp/cpvenv/bin/python`` -> ``python``), so reports name no machine's folders."""
    import re

    return re.sub(r"(?<![\w.-])/[^\s`'\"]*/([^\s/`'\"]+)", r"\1", command)


def peer_parser(doc: str, name: str, train_scenes: int, train_help: str) -> argparse.ArgumentParser:
    """The options every peer benchmark (``<name>_peer.py``, run in the peer's own venv) shares: its time
    budget, threads, training / validation / test scenes and the JSON it writes (``docs/peer_<name>.json``)."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=40.0, help="training wall-time budget")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    ap.add_argument("--train-scenes", type=int, default=train_scenes, help=train_help)
    ap.add_argument("--val-scenes", type=int, default=5, help="validation scenes per style (for the thresholds)")
    ap.add_argument("--scenes", type=int, default=20, help="test scenes per style (as accuracy.py)")
    ap.add_argument("--out", default=str(REPORT.parent / f"peer_{name}.json"))
    return ap
