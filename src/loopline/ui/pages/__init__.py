"""The dashboard's pages, one module per area; each module's ``PAGES`` lists its :class:`~loopline.ui.Page`."""

from __future__ import annotations

import importlib

from loopline.ui._page import Page

MODULES = ("overview", "runs", "datasets", "models", "monitoring", "loop", "tuning")
"""The page modules, in navigation order."""


def all_pages() -> list[Page]:
    """Every page, static paths before parametrised ones (``/models/compare`` before ``/models/{name}``)."""
    pages = [page for name in MODULES for page in importlib.import_module(f"{__name__}.{name}").PAGES]
    return sorted(pages, key=lambda p: (p.path.count("{"), p.order))
