"""What the decoder's small learned parts stored in a model file's metadata share (the joiner of :mod:`.joining`, the
painter of :mod:`.painting`): a network and the probability above which its answer is yes."""

import torch


class ThresholdedNet:
    """Equality, hashing and the weights of a frozen dataclass with fields ``net`` (a torch module) and ``threshold``:
    two are equal when their thresholds and weights are (a model file read twice gives equal parts)."""

    def __eq__(self, other) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        theirs = other.net.state_dict()
        return self.threshold == other.threshold and all(torch.equal(v, theirs[k].to(v.device))
                                                         for k, v in self.net.state_dict().items())

    def __hash__(self) -> int:
        return hash(self.threshold)

    def weights(self) -> dict:
        """The network's state dict on the CPU, as a model file's metadata holds it."""
        return {k: v.detach().cpu() for k, v in self.net.state_dict().items()}
