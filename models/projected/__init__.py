"""Projected GAN (Sauer et al. 2021): a discriminator on the features of a frozen pretrained network."""

from models.projected.discriminator import ProjectedDiscriminator
from models.projected.efficientnet_lite import EfficientNetLite0
from models.projected.feature_network import FeatureNetwork

__all__ = ["EfficientNetLite0", "FeatureNetwork", "ProjectedDiscriminator"]
