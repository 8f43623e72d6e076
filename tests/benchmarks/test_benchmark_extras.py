"""Every benchmark runs from ``pip install -e '.[bench]'``, the install the README names.

Each benchmark's imports (at the top, inside functions, and in the child scripts it runs from strings) must come
from the standard library, loopline, the benchmarks folder, or a distribution that loopline's base dependencies or
its ``bench`` extra install (with what those require in turn).
"""

from __future__ import annotations

import ast
import contextlib
import re
import sys
import tomllib
from functools import cache
from importlib.metadata import PackageNotFoundError, packages_distributions, requires
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).parents[2]
BENCHMARKS = sorted((ROOT / "benchmarks").glob("*.py"))
LOCAL = {path.stem for path in BENCHMARKS} | {"loopline", "__future__"}
OWN_VENV = {
    "mlflow": "bench_train.py and bench_serve.py install MLflow into .bench/mlflow-venv (its pins clash)",
    "evidently": "bench_monitor.py installs Evidently into .bench/evidently-venv (it does not import with pandas 3)",
    "nannyml": "bench_monitor.py installs NannyML into .bench/nannyml-venv (its pins clash)",
    "flaml": "bench_tune.py installs FLAML AutoML into .bench/flaml-venv (its pins clash)",
}
"""Modules a benchmark installs into a virtualenv of its own, with the reason."""


def imported_modules(text: str) -> set[str]:
    """Top-level names of every ``import`` / ``from ... import`` line, in code or in a script held in a string."""
    found: set[str] = set()
    for line in text.splitlines():
        statement = line.strip().rstrip(";")
        if not re.match(r"(import|from)\s+[A-Za-z_]", statement):
            continue
        try:
            tree = ast.parse(statement)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.add(node.module.split(".")[0])
    return found


@cache
def bench_install() -> frozenset[str]:
    """The distributions ``pip install -e '.[bench]'`` installs: base dependencies and the bench extra, with
    loopline's own extras that it names expanded, then everything those require (markers evaluated)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    wanted, seen_extras = list(project["dependencies"]), set()
    todo = ["bench"]
    while todo:
        extra = todo.pop()
        if extra in seen_extras:
            continue
        seen_extras.add(extra)
        for text in extras[extra]:
            requirement = Requirement(text)
            if canonicalize_name(requirement.name) == "loopline":
                todo.extend(requirement.extras)
            else:
                wanted.append(text)
    names: set[str] = set()
    queue = [Requirement(text) for text in wanted]
    while queue:
        requirement = queue.pop()
        name = canonicalize_name(requirement.name)
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        if name in names:
            continue
        names.add(name)
        with contextlib.suppress(PackageNotFoundError):  # not installed here: its own requirements are unknown
            queue.extend(Requirement(text) for text in requires(requirement.name) or [])
    return frozenset(names)


@cache
def _distributions() -> dict[str, list[str]]:
    return dict(packages_distributions())


@pytest.mark.parametrize("path", BENCHMARKS, ids=lambda p: p.name)
def test_each_benchmark_runs_from_the_bench_extra(path: Path) -> None:
    modules = imported_modules(path.read_text()) - set(sys.stdlib_module_names) - LOCAL - set(OWN_VENV)
    distributions = _distributions()
    missing = {}
    for module in sorted(modules):
        owners = {canonicalize_name(d) for d in distributions.get(module, [])}
        if not owners & bench_install():
            missing[module] = sorted(owners) or ["not installed"]
    assert not missing, (
        f"{path.name} imports modules that pip install -e '.[bench]' does not install: {missing}; "
        "add their distributions (or the loopline extra providing them) to the bench extra in pyproject.toml"
    )


def test_the_import_scan_sees_functions_and_child_scripts() -> None:
    text = (
        "import json\ndef f():\n    import psutil\n"
        'CHILD = """\nimport joblib, mlflow.sklearn as m\nfrom paho.mqtt import client\n"""\n'
    )
    assert imported_modules(text) == {"json", "psutil", "joblib", "mlflow", "paho"}
