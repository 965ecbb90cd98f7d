"""Worm data: synthetic BBBC010-like scenes, readers for real folders, augmentation."""

from .synthetic import Scene, SceneConfig, make_scene

__all__ = ["Scene", "SceneConfig", "make_scene"]
