"""What the benchmark scripts share: their model/device/report options and writing their section of the report."""

import argparse
from pathlib import Path

REPORT = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def model_parser(doc: str) -> argparse.ArgumentParser:
    """An argument parser with ``--model`` (default: the shipped one), ``--device`` and ``--report``."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="model file (default: the shipped model)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--report", default=str(REPORT))
    return ap


def replace_section(report: Path, heading: str, section: str) -> None:
    """Put ``section`` in ``report`` where the one starting with ``heading`` is (else at the end)."""
    text = report.read_text() if report.exists() else "# Benchmarks\n"
    parts = text.split("\n## ")
    sections = ["## " + p.strip() + "\n" for p in parts[1:]]
    at = next((i for i, p in enumerate(sections) if p.startswith(heading)), len(sections))
    sections[at:at + 1] = [section.strip() + "\n"]
    report.write_text(parts[0].rstrip() + "\n\n" + "\n".join(sections))


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
