#!/bin/bash
# after checkpoints/bends2.pt: attach the shipped heads, refit the refiner, joiner, rescorer on the new network.
# As run in session 29: fit_joiner first ran with --seconds 300 and stopped with a TypeError (fixed); from it on the
# steps were rerun as below (runs/s29/post2.log)
set -e
cd "$(dirname "$0")/../../.."
P=.venv/bin/python
date
$P docs/training/s28/attach.py checkpoints/bends2.pt checkpoints/bends2_full.pt
date
$P benchmarks/fit_count_refiner.py --model checkpoints/bends2_full.pt --out checkpoints/bends2_ref.pt --train 200 --seconds 480 --cosine --scenes 10 --report runs/s29/refiner.md
date
$P benchmarks/fit_joiner.py --model checkpoints/bends2_ref.pt --train 60 --seconds 240 --scenes 20 --write --report runs/s29/joiner.md
date
$P benchmarks/fit_rescorer.py --model checkpoints/bends2_ref.pt --train 60 --scenes 20 --pool --write --report runs/s29/rescorer.md
date
$P benchmarks/bakeoff.py score src/napari_semiconv/models/default.pt checkpoints/bends2_full.pt checkpoints/bends2_ref.pt --scenes 40 --report runs/s29/choice.md
date
