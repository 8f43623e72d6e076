"""Conformance specs of target encoding (see test_transforms_conform.py); the shared frames, target ``label``."""

from __future__ import annotations

from typing import Any

SPECS: dict[str, list[dict[str, Any]]] = {
    "target_encode": [
        {"columns": ["city", "flag"]},
        {"columns": ["city", "qty"], "smoothing": 0, "folds": 2, "seed": 7},
        {"columns": ["city"], "target_type": "continuous", "smoothing": 2.5},
        {"columns": ["city", "flag"], "target_type": "multiclass"},
    ],
}
