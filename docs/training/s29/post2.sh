#!/bin/bash
set -e
cd /work/main
P=.venv/bin/python
date
$P benchmarks/fit_joiner.py --model checkpoints/bends2_ref.pt --train 60 --seconds 240 --scenes 20 --write --report runs/s29/joiner.md
date
$P benchmarks/fit_rescorer.py --model checkpoints/bends2_ref.pt --train 60 --scenes 20 --pool --write --report runs/s29/rescorer.md
date
$P benchmarks/bakeoff.py score src/napari_semiconv/models/default.pt checkpoints/bends2_full.pt checkpoints/bends2_ref.pt --scenes 40 --report runs/s29/choice.md
date
