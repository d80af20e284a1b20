"""Validate a composed studio-train config before anything is built or written.

Three kinds of node, three rules:
- studio's own keys (run_dir, seed, resume, train.*, ckpt.*, eval.*, the plain keys of data and model)
  each have a rule; a key studio does not know is refused, unless it is a plain key of a config group
  (data, model, logger) that some `${...}` interpolation uses;
- a `_target_` node may only hold arguments its callable accepts, of the annotated types; optimizer
  partials are built once on a dummy parameter so their own argument checks run now;
- anything else is unknown, however it was added (a typo in a YAML file or a `+key=` override).

Every problem becomes one line naming the key; `ConfigError` carries them all.
"""

from __future__ import annotations

import collections.abc
import inspect
import re
import types
import typing
from collections.abc import Callable, Iterator
from typing import Any

import torch
from hydra.utils import get_method, instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf

from studio.features import list_backbones
from studio.metrics.compute import METRIC_GROUPS, metric_outputs
from studio.metrics.eval_views import check_truncations
from studio.metrics.reference import METRICS_DEVICE_CHOICES, resolve_metrics_device

Rule = Callable[[Any], str | None]  # what is wrong with a value, or None
HYDRA_KEYS = {"_target_", "_partial_", "_recursive_", "_convert_", "_args_"}
INTERPOLATION = re.compile(r"\$\{([\w.]+)\}")


class ConfigError(ValueError):
    """One or more invalid config values; the message has one line per key."""


def integer(minimum: int) -> Rule:
    def check(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            return f"must be an integer >= {minimum}"
        return None

    return check


def positive_number(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        return "must be a number > 0"
    return None


def non_negative_number(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        return "must be a number >= 0"
    return None


def optional(rule: Rule) -> Rule:
    def check(value: Any) -> str | None:
        problem = None if value is None else rule(value)
        return None if problem is None else f"{problem} (or null)"

    return check


def one_of(*choices: Any) -> Rule:
    def check(value: Any) -> str | None:
        if any(value is choice or (type(value) is type(choice) and value == choice) for choice in choices):
            return None
        return "must be one of " + ", ".join("null" if c is None else str(c).lower() for c in choices)

    return check


def text(value: Any) -> str | None:
    return None if isinstance(value, str) and value else "must be a non-empty string"


def boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else "must be true or false"


def either(*rules: Rule) -> Rule:
    def check(value: Any) -> str | None:
        problems = [rule(value) for rule in rules]
        return None if None in problems else " or ".join(problems)

    return check


def metric_names(value: Any) -> str | None:
    if not isinstance(value, (list, tuple)):
        return f"must be a list of metric names among {', '.join(METRIC_GROUPS)}"
    unknown = [name for name in value if name not in METRIC_GROUPS]
    return f"unknown metric(s) {unknown}; valid: {', '.join(METRIC_GROUPS)}" if unknown else None


def backbone_name(value: Any) -> str | None:
    return None if value in list_backbones() else f"must be one of {', '.join(list_backbones())}"


def psi_values(value: Any) -> str | None:
    if not isinstance(value, (list, tuple)):
        return "must be a list of truncation values in [0, 1], e.g. [1.0,0.9,0.8,0.7,0.5]"
    try:
        check_truncations(value)
    except ValueError as err:
        return str(err)
    return None


def device_setting(value: Any) -> str | None:
    wrong = f"must be {METRICS_DEVICE_CHOICES}"
    if not isinstance(value, str):
        return wrong
    try:
        resolve_metrics_device(value, torch.device("cpu"))
    except ValueError:
        return wrong
    return None


def options_mapping(value: Any) -> str | None:
    if isinstance(value, dict) and all(isinstance(v, dict) for v in value.values()):
        return None
    return "must map functional metric names to {option: value}, e.g. eval.options.kid.subset_size=100"


TOP_LEVEL: dict[str, Rule] = {
    "run_dir": text,
    "seed": integer(0),
    "resume": optional(text),
}
SECTIONS: dict[str, dict[str, Rule]] = {
    "train": {
        "kimg": positive_number,
        "batch": integer(1),
        "batch_gpu": optional(integer(1)),
        "ema_kimg": optional(positive_number),
        "ema_rampup": optional(positive_number),
        "cpu_threads": optional(integer(1)),
        "channels_last": one_of(True, False, "auto"),
    },
    "ckpt": {"every_kimg": positive_number},
    "eval": {
        "every_kimg": positive_number,
        "metrics": metric_names,
        "options": options_mapping,
        "monitor": optional(text),
        "mode": one_of("auto", "min", "max"),
        "strict": boolean,
        "views": boolean,
        "psi_sweep": psi_values,
        "num_gen": integer(1),
        "num_real": optional(integer(1)),
        "backbone": backbone_name,
        "weights": optional(text),
        "batch": either(one_of("auto"), integer(1)),
        "metrics_device": device_setting,
        "grid": integer(1),
    },
}
# Plain keys of the swappable groups that studio reads itself; their other plain keys only feed
# interpolations into _target_ nodes and must be used by one.
GROUP_KEYS: dict[str, dict[str, Rule]] = {
    "data": {
        "resolution": optional(integer(1)),
        "use_labels": boolean,
        "num_workers": either(one_of("auto"), integer(0)),
    },
    "model": {"c_dim": integer(0), "backbone_weights": optional(text)},
    "logger": {"offline": boolean},
}
TARGET_GROUPS = ("loss", "trainer")
OPTIONAL_TARGET_GROUPS = ("augment", "optimizer")  # optimizer: one _target_ per network; augment: one or none
REQUIRED_HINTS = {"data.path": "/path/to/images (a folder or a .zip of images)"}


def check_config(cfg: DictConfig, referenced: frozenset[str] | set[str] = frozenset()) -> None:
    """Raise ConfigError listing every invalid or unknown key of a composed training config.
    `referenced`: keys used by interpolations outside `cfg` (Hydra's own settings)."""
    missing = [key for key, value in raw_values(cfg) if value == "???"]
    if missing:  # nothing resolves without them
        raise ConfigError(
            "Invalid config:\n  "
            + "\n  ".join(
                f"{key}: required, no default; set {key}={REQUIRED_HINTS.get(key, 'VALUE')}."
                for key in missing
            )
        )
    values = OmegaConf.to_container(cfg, resolve=True)
    used = interpolated_keys(cfg) | set(referenced)
    checked_at_source = forwarded_ruled_keys(cfg)
    problems: list[str] = []
    known = [*TOP_LEVEL, *SECTIONS, *GROUP_KEYS, *TARGET_GROUPS, *OPTIONAL_TARGET_GROUPS]
    problems += [unknown(key, known) for key in values if key not in known]
    problems += check_rules(values, TOP_LEVEL, "")
    for section, rules in SECTIONS.items():
        problems += check_rules(values.get(section, {}), rules, f"{section}.", refuse_unknown=True)
    for group, rules in GROUP_KEYS.items():
        problems += check_group(values.get(group) or {}, rules, group, used, checked_at_source)
    for group in TARGET_GROUPS:
        problems += check_target(values[group], group, checked_at_source)
    if values.get("augment"):  # augment=none is an empty config
        problems += check_target(values["augment"], "augment", checked_at_source)
    if "augment" in values.get("loss", {}):
        problems.append("loss.augment: set by the augment group; use augment=diffaugment|ada and augment.*.")
    for name, node in (values.get("optimizer") or {}).items():
        problems += check_target(node, f"optimizer.{name}", checked_at_source)
    problems += check_monitor(values.get("eval", {}))
    if not any(line.startswith("trainer.precision=") for line in problems):  # else not Lightning's either
        problems += check_trainer_precision(values.get("trainer", {}))
    if values.get("eval", {}).get("psi_sweep") and values["eval"].get("views") is False:
        problems.append(
            "eval.psi_sweep: the sweep is one of the views; set eval.views=true or eval.psi_sweep=[]."
        )
    if problems:
        raise ConfigError(
            "Invalid config (fix the keys named, see `studio-train --cfg job`):\n  " + "\n  ".join(problems)
        )


def check_trainer_precision(trainer_values: dict) -> list[str]:
    """Lightning's mixed and half precision would autocast steps that studio runs with plain optimizers
    (no loss scaling) and that hold float32 state (the mapping's w average, the EMA generator)."""
    precision = trainer_values.get("precision", "32-true")
    if str(precision) in ("32-true", "32"):
        return []
    return [
        f"trainer.precision={shown(precision)}: studio trains with 32-true and runs float16 itself where "
        "it is safe: on CUDA, model.num_fp16_res=N puts the top N resolutions of StyleGAN G and D in "
        "float16 (docs/training.md)."
    ]


def check_monitor(eval_values: dict) -> list[str]:
    """eval.monitor names a result of eval.metrics; eval.mode=auto needs a result with a direction."""
    monitor, metrics = eval_values.get("monitor"), eval_values.get("metrics")
    if monitor is None or metric_names(metrics) is not None:
        return []
    outputs = metric_outputs(metrics) if metrics else {}
    if monitor not in outputs:
        return [
            f"eval.monitor={monitor}: not a result of eval.metrics={metrics}; "
            f"choose one of {', '.join(outputs) or '(none: eval.metrics is empty)'}."
        ]
    if eval_values.get("mode") == "auto" and not outputs[monitor]:
        return [f"eval.mode=auto: {monitor} has no better direction; set eval.mode=min or eval.mode=max."]
    return []


def check_rules(values: dict, rules: dict[str, Rule], prefix: str, refuse_unknown: bool = False) -> list[str]:
    problems = []
    for key, value in values.items():
        if key in rules:
            problem = rules[key](value)
            if problem:
                problems.append(f"{prefix}{key}={shown(value)}: {problem}.")
        elif refuse_unknown:
            problems.append(unknown(f"{prefix}{key}", list(rules)))
    return problems


def check_group(
    values: dict, rules: dict[str, Rule], group: str, used: set[str], checked_at_source: set[str]
) -> list[str]:
    """A group's plain keys by their rules or by use; its _target_ nodes by their callables."""
    problems = check_rules({k: v for k, v in values.items() if k in rules}, rules, f"{group}.")
    for key, value in values.items():
        if isinstance(value, dict) and "_target_" in value:
            problems += check_target(value, f"{group}.{key}", checked_at_source)
        elif key not in rules and f"{group}.{key}" not in used:
            problems.append(
                f"{group}.{key}: this {group} config does not use it (no _target_ argument refers to it); "
                "remove it or pick the config group that has it."
            )
    return problems


def check_target(node: Any, where: str, checked_at_source: set[str]) -> list[str]:
    """Arguments of a `_target_` node against its callable's signature and type annotations (except
    those in `checked_at_source`, see forwarded_ruled_keys)."""
    if not (isinstance(node, dict) and "_target_" in node):
        return [f"{where}: must be a config with a _target_ (a class or function to call)."]
    try:
        target = get_method(node["_target_"])
    except Exception as err:  # Hydra raises ImportError or ValueError depending on the failure
        return [f"{where}._target_={node['_target_']}: cannot be imported ({err})."]
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError):
        return []
    params = signature.parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    hints = type_hints(target)
    problems = []
    for key, value in node.items():
        if key in HYDRA_KEYS:
            continue
        if key not in params or params[key].kind is inspect.Parameter.VAR_KEYWORD:
            if not takes_any:
                accepted = [
                    name for name, p in params.items() if p.kind is not inspect.Parameter.VAR_POSITIONAL
                ]
                problems.append(unknown(f"{where}.{key}", accepted, f"{node['_target_']} takes"))
        elif key in hints and f"{where}.{key}" not in checked_at_source and not matches(value, hints[key]):
            problems.append(f"{where}.{key}={shown(value)}: must be {describe(hints[key])}.")
    if (
        not problems
        and node.get("_partial_")
        and isinstance(target, type)
        and issubclass(target, torch.optim.Optimizer)
    ):
        problems += probe_optimizer(node, where)
    return problems


def probe_optimizer(node: dict, where: str) -> list[str]:
    """Build the optimizer on one dummy parameter so that its own checks (lr >= 0, ...) run now."""
    try:
        instantiate(node)([torch.zeros(1, requires_grad=True)])
    except Exception as err:  # the optimizer's own ValueError, wrapped by Hydra
        cause = err.__cause__ or err
        return [f"{where}: {cause}."]
    return []


def type_hints(target: Callable) -> dict[str, Any]:
    init = target.__init__ if isinstance(target, type) else target
    try:
        return typing.get_type_hints(init)
    except Exception:  # unresolvable forward references: the values are then checked when called
        return {}


def matches(value: Any, hint: Any) -> bool:
    """Whether a plain config value (None, bool, int, float, str, list, dict) fits a type annotation."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(matches(value, arg) for arg in args)
    if origin is typing.Literal:
        return value in args
    if hint is None or hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    base = origin or hint
    if base in (list, tuple, collections.abc.Sequence):
        return isinstance(value, (list, tuple))
    if base in (dict, collections.abc.Mapping):
        return isinstance(value, dict)
    if isinstance(value, dict) and "_target_" in value:
        return True
    return isinstance(value, base) if isinstance(base, type) else True


def describe(hint: Any) -> str:
    """A type annotation in words; the choices of nested Literals are listed once."""
    choices: list[Any] = []
    kinds: list[str] = []
    for part in flatten_union(hint):
        if typing.get_origin(part) is typing.Literal:
            choices += [arg for arg in typing.get_args(part) if arg not in choices]
        else:
            kinds.append("null" if part is type(None) else getattr(part, "__name__", str(part)))
    if choices:
        kinds.insert(0, "one of " + ", ".join(map(str, choices)))
    return " or ".join(kinds)


def flatten_union(hint: Any) -> list[Any]:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return [part for arg in typing.get_args(hint) for part in flatten_union(arg)]
    return [hint]


def interpolated_keys(cfg: DictConfig) -> set[str]:
    """Every dotted key that some `${...}` interpolation of the (unresolved) config refers to."""
    return {
        match
        for _, value in raw_values(cfg)
        if isinstance(value, str)
        for match in INTERPOLATION.findall(value)
    }


def forwarded_ruled_keys(cfg: DictConfig) -> set[str]:
    """Keys whose value is just `${key}` of a key studio has a rule for: that rule judges the value
    (data.resolution=null is valid there and completed from the dataset before anything is built)."""
    ruled = {
        f"{section}.{key}" for section, rules in (*SECTIONS.items(), *GROUP_KEYS.items()) for key in rules
    }
    ruled |= set(TOP_LEVEL)
    return {
        key
        for key, value in raw_values(cfg)
        if isinstance(value, str) and (match := INTERPOLATION.fullmatch(value)) and match.group(1) in ruled
    }


def raw_values(node: DictConfig | ListConfig, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted key, unresolved value) of every leaf: interpolations stay strings, missing values "???"."""
    keys = node.keys() if isinstance(node, DictConfig) else range(len(node))
    for key in keys:
        child = node._get_node(key)
        if isinstance(child, (DictConfig, ListConfig)):
            yield from raw_values(child, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", child._value()


def unknown(key: str, valid: list[str], owner: str = "valid keys here") -> str:
    return f"{key}: unknown key ({owner}: {', '.join(valid)})."


def shown(value: Any) -> str:
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
