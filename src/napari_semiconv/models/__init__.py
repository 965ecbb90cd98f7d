"""Shipped model files (``default.pt`` + ``default.json`` card)."""

from pathlib import Path

DEFAULT_MODEL = Path(__file__).with_name("default.pt")
