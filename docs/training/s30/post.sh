#!/bin/bash
# after checkpoints/wide.pt (session 30: bends2.pt trained on wider worm lengths, more crowding and clumping): the
# shipped heads attached, then the model choice on 40 + 40 validation scenes and the axes probe on 20 + 20 per axis
# As run: a first try also wrote a card from the model file after attaching and stopped there (tensors in the
# metadata); the steps after attaching were then rerun as below (runs/s30/post.log)
set -e
cd "$(dirname "$0")/../../.."
P=.venv/bin/python
date
$P docs/training/s28/attach.py checkpoints/wide.pt checkpoints/wide_full.pt
date
$P benchmarks/bakeoff.py score src/napari_semiconv/models/default.pt checkpoints/wide_full.pt --scenes 40 --report runs/s30/choice.md
date
$P docs/training/s29/axes.py 20 checkpoints/wide_full.pt > runs/s30/axes_wide.log
date
$P docs/training/s29/axes.py 20 > runs/s30/axes_shipped.log
date
