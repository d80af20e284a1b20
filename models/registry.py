"""Stable, versioned names for network classes (timm-style registry).

Checkpoints store a network as (name, version, constructor arguments), never as a Python import path,
so a class can move or be renamed without breaking old checkpoints. A network class registers itself
with `@register_network(name, version)`; when its constructor or state_dict layout changes
incompatibly, the new class takes the next version and the old one stays registered under its own.
"""

from collections.abc import Callable

from torch import nn

NETWORKS: dict[tuple[str, int], type[nn.Module]] = {}


def register_network(name: str, version: int = 1) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Class decorator: make the class constructible as `create_network(name, version, ...)`."""

    def register(cls: type[nn.Module]) -> type[nn.Module]:
        key = (name, int(version))
        if key in NETWORKS and NETWORKS[key] is not cls:
            raise ValueError(f"network {name!r} version {version} is already registered by {NETWORKS[key]}")
        NETWORKS[key] = cls
        return cls

    return register


def network_name(network: nn.Module | type[nn.Module]) -> tuple[str, int]:
    """(name, version) under which the class of `network` is registered."""
    cls = network if isinstance(network, type) else type(network)
    for key, registered in NETWORKS.items():
        if registered is cls:
            return key
    raise KeyError(f"{cls.__qualname__} is not a registered network; decorate it with @register_network")


def create_network(name: str, version: int | None = None, **kwargs) -> nn.Module:
    """Build the network registered as (name, version) (newest version when None) from its kwargs."""
    versions = sorted(v for n, v in NETWORKS if n == name)
    if not versions:
        names = sorted({n for n, _ in NETWORKS})
        raise KeyError(f"unknown network {name!r}; registered: {names}")
    version = versions[-1] if version is None else int(version)
    if version not in versions:
        raise KeyError(
            f"network {name!r} version {version} is not known to this studio (it knows {versions}); "
            "the checkpoint was written by a newer studio: upgrade studio to read it."
        )
    return NETWORKS[name, version](**kwargs)
