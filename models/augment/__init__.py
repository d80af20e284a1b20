"""Differentiable discriminator augmentations: DiffAugment and adaptive discriminator augmentation (ADA).

Both take images [N, C, H, W] in [-1, 1] and return augmented images of the same shape and dtype,
differentiable w.r.t. the images (to any order), drawing from torch's global RNG. `Augment.adaptive`
tells the training loss whether to feed the real logits back (`accumulate`, then `adjust` every
`interval` steps).
"""

from models.augment.ada import AdaptiveAugment
from models.augment.base import Augment
from models.augment.diffaugment import DiffAugment

__all__ = ["AdaptiveAugment", "Augment", "DiffAugment"]
