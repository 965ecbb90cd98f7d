"""The contact pairs that contact_fit.py collected from training scenes 0-149 and 150-599 per style (the same
contacts and labels as ``benchmarks/fit_joiner.py --contacts --train 600`` would collect, in another order), as one
cache for fit_joiner --contacts --train 600 --cache OUT.

    python docs/training/s37/merge_contacts.py FIRST.pt SECOND.pt OUT.pt
"""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from contact_fit import joined

first, second = (torch.load(f, weights_only=True) for f in sys.argv[1:3])
pairs = joined(first, second)
order = torch.argsort(pairs["patch"], stable=True)  # a patch's pairs consecutive
torch.save({**{k: v[order] for k, v in pairs.items()}, "made_by": torch.tensor([600, 0, 1])}, sys.argv[3])
print(f"{len(pairs['labels'])} contact pairs ({pairs['labels'].float().mean():.2f} of one worm)")
