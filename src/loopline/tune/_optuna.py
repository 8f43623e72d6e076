"""Optuna, imported only when a tuning runs (the ``tune`` extra)."""

from __future__ import annotations

import importlib
from types import ModuleType

from loopline.core.errors import ConfigError


def optuna() -> ModuleType:
    """The ``optuna`` module; ConfigError naming the extra when it is not installed."""
    try:
        module = importlib.import_module("optuna")
    except ImportError:
        raise ConfigError(
            "tuning needs Optuna, which is not installed.",
            hint="Install it with: pip install 'loopline[tune]'",
        ) from None
    module.logging.set_verbosity(module.logging.WARNING)
    return module
