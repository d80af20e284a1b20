"""The interface every discriminator augmentation shares."""

from torch import Tensor, nn


class Augment(nn.Module):
    """A differentiable, random image augmentation for the discriminator's inputs.

    `forward(images)` takes images [N, C, H, W] in [-1, 1] and returns augmented images of the same shape
    and dtype, differentiable w.r.t. the images. Randomness comes from torch's global generator of the
    images' device, so a run is reproducible under `torch.manual_seed` and resumes exactly when the RNG
    state is restored.

    `adaptive` is True for augmentations whose strength follows the discriminator
    (`accumulate(real_logits)` then `adjust(batch_size)`, see `AdaptiveAugment`); the training loss calls
    those only when it is set.
    """

    adaptive: bool = False

    def forward(self, images: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError
