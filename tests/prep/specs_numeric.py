"""Conformance specs of the numeric transformations (see test_transforms_conform.py), on the shared frames."""

from __future__ import annotations

from typing import Any

SPECS: dict[str, dict[str, Any] | list[dict[str, Any]]] = {
    "log": [
        {"columns": ["amount", "qty"]},
        {"columns": ["amount", "flag"], "offset": 1.5, "errors": "nan"},
    ],
    "power": [{"columns": ["amount", "qty"]}, {"columns": ["amount", "flag"], "standardize": False}],
    "bin": [
        {"columns": ["amount", "qty"]},
        {"columns": ["amount"], "strategy": "uniform", "n_bins": 3, "labels": ["low", "mid", "high"]},
        {"columns": ["qty", "flag"], "n_bins": 4},
    ],
}
