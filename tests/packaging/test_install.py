"""What a plain install needs: every package listed, every runtime import declared, layers that import
downward, and checkpoint readers that do not load the training stack.

These read the source with `ast` instead of importing it, so a missing dependency or an upward import
fails here even in an environment that happens to have every package installed. The wheel itself is
installed into a clean virtual environment and run by `.ci/wheel_check`.
"""

import ast
import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

REPO = Path(__file__).resolve().parents[2]
FIRST_PARTY = ("studio", "models", "ops")
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def source_files(*packages: str) -> list[Path]:
    return sorted(path for package in packages for path in (REPO / package).rglob("*.py"))


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Absolute module names imported anywhere in the file (top level or inside functions)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def requirement_name(requirement: str) -> str:
    return re.split(r"[\s<>=!~\[;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_every_package_of_the_tree_is_listed_in_pyproject() -> None:
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    found = {module_name(init) for package in FIRST_PARTY for init in (REPO / package).rglob("__init__.py")}
    assert found - {"studio.conf"} == listed - {"studio.conf"}
    assert PYPROJECT["tool"]["setuptools"]["package-dir"] == {"studio.conf": "conf"}
    assert (REPO / "conf" / "__init__.py").is_file()


def test_every_config_file_ships_in_the_wheel() -> None:
    # The wheel's studio.conf holds the files package-data's patterns match (fnmatch-style, one level per
    # "*/"): a config group nested deeper than the patterns reach would be missing from a plain install.
    patterns = PYPROJECT["tool"]["setuptools"]["package-data"]["studio.conf"]
    configs = [path.relative_to(REPO / "conf") for path in (REPO / "conf").rglob("*.yaml")]
    assert configs
    unmatched = [
        str(path)
        for path in configs
        if not any(
            path.match(pattern) and len(path.parts) == len(Path(pattern).parts) for pattern in patterns
        )
    ]
    assert unmatched == []


def test_every_third_party_import_is_a_declared_runtime_dependency() -> None:
    declared = {requirement_name(r) for r in PYPROJECT["project"]["dependencies"]}
    distributions = importlib.metadata.packages_distributions()
    undeclared = {}
    for path in source_files(*FIRST_PARTY, "conf"):
        for name in imported_modules(path):
            top = name.split(".")[0]
            if top in FIRST_PARTY or top in sys.stdlib_module_names or top == "__future__":
                continue
            owners = {d.lower().replace("_", "-") for d in distributions.get(top, [top])}
            if not owners & declared:
                undeclared.setdefault(top, set()).add(str(path.relative_to(REPO)))
    assert not undeclared, f"imported but not in [project] dependencies: {undeclared}"


def test_configs_only_name_classes_of_the_installed_packages_and_torch() -> None:
    targets = re.findall(
        r"_target_:\s*([\w.]+)", " ".join(p.read_text() for p in (REPO / "conf").rglob("*.yaml"))
    )
    assert targets
    assert {t.split(".")[0] for t in targets} <= {"studio", "models", "torch", "lightning"}


# Who may import whom (design: ops <- models <- data, features, metrics, io <- callbacks <- training <- cli).
FORBIDDEN = {
    "ops": ("models", "studio"),
    "models": ("studio",),
    "studio.io": ("studio.callbacks", "studio.training", "studio.cli", "lightning", "hydra"),
    "studio.runtime": ("studio.callbacks", "studio.training", "studio.cli", "lightning", "hydra"),
    "studio.sampling": ("studio.callbacks", "studio.training", "studio.cli", "lightning", "hydra"),
    "studio.data": ("studio.callbacks", "studio.training", "studio.cli"),
    "studio.features": ("studio.callbacks", "studio.training", "studio.cli"),
    "studio.metrics": ("studio.callbacks", "studio.training", "studio.cli"),
    "studio.callbacks": ("studio.training", "studio.cli"),
    "studio.training": ("studio.cli",),
}


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layers_import_downward(layer: str) -> None:
    root = REPO.joinpath(*layer.split("."))
    files = [root.with_suffix(".py")] if root.with_suffix(".py").is_file() else sorted(root.rglob("*.py"))
    assert files
    upward = [
        f"{path.relative_to(REPO)} imports {name}"
        for path in files
        for name in imported_modules(path)
        if any(name == banned or name.startswith(banned + ".") for banned in FORBIDDEN[layer])
    ]
    assert not upward


def python_in_checkout(code: str) -> str:
    """What `python -c code` prints, run in the checkout's root in a fresh process."""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    return run.stdout.strip()


def test_reading_a_checkpoint_loads_neither_lightning_nor_hydra() -> None:
    code = (
        "import sys\n"
        "import studio.cli.generate, studio.cli.eval, studio.io.checkpoint, studio.sampling\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'lightning', 'hydra', 'pytorch_lightning', "
        "'lightning_fabric', 'wandb', 'sklearn'}))\n"
    )
    assert python_in_checkout(code) == "[]"


def test_an_uninstalled_checkout_finds_its_config_tree() -> None:
    """PYTHONPATH=<checkout> without installing it (as benchmarks/gpu_checks.sh runs on the GPU machine):
    the package studio.conf does not exist there, so the checkout's conf/ is the config tree."""
    code = (
        "import sys, importlib.util\n"
        "sys.meta_path[:] = [f for f in sys.meta_path if getattr(f, '__name__', '') != '_EditableFinder']\n"
        "assert importlib.util.find_spec('studio.conf') is None\n"
        "from studio.cli.train import CONFIG_DIR\n"
        "print(CONFIG_DIR)\n"
    )
    assert Path(python_in_checkout(code)) == REPO / "conf"
