"""The card of a model made by attach.py: the shipped model's card with the refiner's entry, the shipped model's
validation kept as previous_shipped_model. usage: card.py OUT.json"""
import json
import sys
from pathlib import Path

shipped = json.loads(Path("src/napari_semiconv/models/default.json").read_text())
card = {k: v for k, v in shipped.items() if k != "validation"}
v = shipped["validation"]
card["validation"] = {"previous_shipped_model": {"scenes": v["scenes"], **{f"{s}_{k}": v[s][k] for s in
                                                 ("brightfield", "fluorescence") for k in ("avS", "S@0.5", "AP")}}}
card["count_refiner"] = {
    "what": "napari_semiconv.model.count_refiner.CountRefiner on the count head's logits, the image and the flow",
    "trained_on": "the shipped model's outputs on 300 training scenes (seeds TRAIN_SEEDS - 3e6 + i, styles at random, "
                  "1 in 10 binary), 600 s at lr 1e-3 then 1500 s cosine from 1e-3, 2 threads, AMD EPYC",
    "commands": ["python docs/training/s22/refine_count.py gen 300 runs/s22/cache.pt",
                 "python docs/training/s22/refine_count.py fit runs/s22/cache.pt 600 runs/s22/refiner10.pt",
                 ("python docs/training/s22/refine_count.py fit runs/s22/cache.pt 1500 runs/s22/refiner35.pt "
                  "runs/s22/refiner10.pt"),
                 "python docs/training/s22/attach.py runs/s22/refiner35.pt checkpoints/refined.pt ...",
                 "(benchmarks/fit_count_refiner.py is the same recipe as one script)"]}
card["note"] = ("The session-21 shipped piece model with a count refiner (session 22) on its count head; its joiner and "
                "rescorer refitted for the refined counts. " + shipped["note"])
Path(sys.argv[1]).write_text(json.dumps(card, indent=2))
