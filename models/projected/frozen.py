"""Fixed parts of a network (a pretrained backbone, random projections) that never train."""

from torch import nn


class FrozenModule(nn.Module):
    """Base of modules whose weights are fixed: `freeze_()` (call it at the end of __init__) turns every
    parameter into a buffer of the same name, so it stays in the state dict and moves with `.to()`, but
    neither a parent's `requires_grad_(True)` (the training loop toggles the whole discriminator every
    phase; nn.Module's does not consult children) nor an optimizer over the parent's parameters reaches
    it. The module stays in eval mode (BatchNorm keeps its running statistics). Gradients still flow
    through it to its input."""

    def freeze_(self) -> "FrozenModule":
        for module in self.modules():
            for name, param in list(module.named_parameters(recurse=False)):
                delattr(module, name)
                module.register_buffer(name, param.detach())
        return super().train(False)

    def train(self, mode: bool = True) -> "FrozenModule":
        return super().train(False)
