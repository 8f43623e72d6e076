"""Importing loopline does nothing observable, and the public surface is explicit."""

from __future__ import annotations

import subprocess
import sys

import loopline


def test_import_has_no_side_effects() -> None:
    code = (
        "import logging, os, sys, warnings\n"
        "before_env = dict(os.environ); before_filters = list(warnings.filters)\n"
        "import loopline, loopline.core\n"
        "assert dict(os.environ) == before_env, 'environment changed'\n"
        "assert list(warnings.filters) == before_filters, 'warning filters changed'\n"
        "assert not logging.getLogger().handlers, 'root logging configured'\n"
        "assert not logging.getLogger('loopline').handlers, 'loopline logger configured'\n"
        "heavy = ('sklearn', 'polars', 'sqlalchemy', 'fastapi', 'loopline.run.steps', 'matplotlib', 'pandas')\n"
        "heavy = [m for m in heavy if m in sys.modules]\n"
        "assert not heavy, f'imported at import time: {heavy}'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_public_names_are_sorted_and_exist() -> None:
    names = [n for n in loopline.__all__ if n != "__version__"]
    assert names == sorted(names)
    for name in loopline.__all__:
        assert hasattr(loopline, name)


def test_every_package_lists_existing_public_names() -> None:
    import importlib

    packages = ("core", "ingest", "prep", "train", "monitor", "store", "run", "serve", "report", "cli", "testing")
    for package in packages:
        module = importlib.import_module(f"loopline.{package}")
        assert module.__all__, package
        for name in module.__all__:
            assert hasattr(module, name), f"loopline.{package}.{name}"
