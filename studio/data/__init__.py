"""Datasets for training and evaluation: procedural shapes, image folders/zips, a resumable sampler."""

from studio.data.image_folder import CorruptImageError, ImageFolderDataset
from studio.data.sampler import InfiniteSampler
from studio.data.shapes import ShapesDataset

__all__ = ["CorruptImageError", "ImageFolderDataset", "InfiniteSampler", "ShapesDataset"]
