"""Name -> network class registry (timm-style) for code that picks networks by name.

Configs instantiate the classes directly (`_target_: models.stylegan2.Generator`); the registry serves
scripts and tests that take a model name. A new architecture registers itself with `register`.
"""

from collections.abc import Callable

from torch import nn

from models.stylegan2 import Discriminator as StyleGAN2Discriminator
from models.stylegan2 import Generator as StyleGAN2Generator

GENERATORS: dict[str, Callable[..., nn.Module]] = {"stylegan2": StyleGAN2Generator}
DISCRIMINATORS: dict[str, Callable[..., nn.Module]] = {"stylegan2": StyleGAN2Discriminator}


def register(
    name: str,
    generator: Callable[..., nn.Module] | None = None,
    discriminator: Callable[..., nn.Module] | None = None,
) -> None:
    """Make `name` available to create_generator / create_discriminator."""
    if generator is not None:
        GENERATORS[name] = generator
    if discriminator is not None:
        DISCRIMINATORS[name] = discriminator


def create_generator(name: str, **kwargs) -> nn.Module:
    """The generator registered as `name`, built with the constructor's keyword arguments."""
    return _lookup(GENERATORS, name, "generator")(**kwargs)


def create_discriminator(name: str, **kwargs) -> nn.Module:
    """The discriminator registered as `name`, built with the constructor's keyword arguments."""
    return _lookup(DISCRIMINATORS, name, "discriminator")(**kwargs)


def _lookup(table: dict[str, Callable[..., nn.Module]], name: str, kind: str) -> Callable[..., nn.Module]:
    if name not in table:
        raise KeyError(f"unknown {kind} {name!r}; registered: {sorted(table)}")
    return table[name]
