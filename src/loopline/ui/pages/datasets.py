"""Dashboard pages: datasets (to be written)."""

from __future__ import annotations

from loopline.ui._page import Page

PAGES: list[Page] = []
