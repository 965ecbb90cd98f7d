"""napari dock widgets: thin consumers of segment.py, affinity.py, finetune.py, measure.py."""
