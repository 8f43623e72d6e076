"""Every built-in transform passes the transform contract (loopline.testing.check_transform).

Each family of transforms lists its cases in a ``specs_<family>.py`` module beside this file: ``SPECS``
(type name -> options, or a list of option sets) and, optionally, its own ``TRAIN``/``TEST`` frames and
``TARGET``; the shared frames below serve the others.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import Any

import polars as pl
import pytest

from loopline.prep import TRANSFORMS, build_transform
from loopline.testing import check_transform

TRAIN = pl.DataFrame(
    {
        "amount": [1.5, None, 3.0, float("nan"), 5.0, 2.5, 1.0, 4.0],
        "qty": [1, 2, None, 4, 0, 3, 1, 2],
        "city": ["lyon", "paris", "lyon", None, "nice", "paris", "lyon", "lyon"],
        "flag": [True, False, None, True, True, False, True, False],
        "label": [0, 1, 0, 1, 1, 0, 0, 1],
    }
)
TEST = pl.DataFrame(
    {
        "amount": [None, 10.0, -2.0, float("inf")],
        "qty": [5, None, 0, 1],
        "city": ["rome", None, "lyon", "paris"],  # rome: never seen
        "flag": [None, True, False, True],
    }
)


def _spec_modules() -> list[ModuleType]:
    here = Path(__file__).parent
    return [importlib.import_module(f"{__package__}.{p.stem}") for p in sorted(here.glob("specs_*.py"))]


def _cases() -> list[Any]:
    cases = []
    for module in _spec_modules():
        family = module.__name__.rsplit("specs_", 1)[-1]
        for type_name, options in module.SPECS.items():
            for i, option in enumerate(options if isinstance(options, list) else [options]):
                cases.append(pytest.param(module, type_name, option, id=f"{family}-{type_name}-{i}"))
    return cases


@pytest.mark.parametrize(("module", "type_name", "options"), _cases())
def test_builtin_transform_conforms(module: ModuleType, type_name: str, options: dict[str, Any]) -> None:
    train = getattr(module, "TRAIN", TRAIN)
    test = getattr(module, "TEST", TEST)
    target = getattr(module, "TARGET", "label")
    check_transform(lambda: build_transform({"type": type_name, **options}), train, test, target=target)


def test_every_registered_transform_is_checked() -> None:
    checked = {name for module in _spec_modules() for name in module.SPECS}
    missing = set(TRANSFORMS.names()) - checked
    assert not missing, f"add {sorted(missing)} to a tests/prep/specs_<family>.py module"
