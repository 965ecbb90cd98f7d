"""Paper section 4 in miniature: the convolutional embedding cannot separate identical dots."""

import importlib.util
from pathlib import Path

spec = importlib.util.spec_from_file_location(
    "synthetic_dots", Path(__file__).resolve().parents[1] / "benchmarks" / "synthetic_dots.py")
dots = importlib.util.module_from_spec(spec)
spec.loader.exec_module(dots)


def test_semiconv_separates_identical_dots_conv_does_not():
    semi = dots.run(semiconv=True, steps=100)
    conv = dots.run(semiconv=False, steps=100)
    assert semi["S@0.5"] >= 0.9 and semi["ARI"] >= 0.9
    assert conv["S@0.5"] <= 0.5 and conv["ARI"] <= 0.5
