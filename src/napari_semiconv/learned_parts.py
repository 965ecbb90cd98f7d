"""What the decoder's small learned parts stored in a model file's metadata share (the joiner of :mod:`.joining`, the
painter of :mod:`.painting`): a network, the probability above which its answer is yes, and how it is run."""

import torch


class ThresholdedNet:
    """Equality, hashing and the weights of a frozen dataclass with fields ``net`` (a torch module) and ``threshold``:
    two are equal when their thresholds and weights are (a model file read twice gives equal parts)."""

    def __eq__(self, other) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        mine, theirs = self.net.state_dict(), other.net.state_dict()
        return (self.threshold == other.threshold and mine.keys() == theirs.keys()
                and all(torch.equal(v, theirs[k].to(v.device)) for k, v in mine.items()))

    def __hash__(self) -> int:
        return hash(self.threshold)

    @torch.no_grad()
    def probability(self, x: torch.Tensor, *rest: torch.Tensor) -> torch.Tensor:
        """The network's answers as probabilities, on the CPU, for the batch ``x (M, C, S, S)`` float32 (and ``rest``,
        its other inputs), run on the network's device. On a CPU its weights are laid out channels-last (in place) and
        so is ``x``: these small networks then run 1.3-1.5x faster on 2 cores (docs/training/s34/layout.log)."""
        device = next(self.net.parameters()).device
        if device.type == "cpu":
            self.net.to(memory_format=torch.channels_last)
            x = x.contiguous(memory_format=torch.channels_last)
        return torch.sigmoid(self.net(x.to(device), *(r.to(device) for r in rest))).cpu()

    def weights(self) -> dict:
        """The network's state dict on the CPU, as a model file's metadata holds it."""
        return {k: v.detach().cpu() for k, v in self.net.state_dict().items()}
