"""Conformance specs of the core transforms (see test_transforms_conform.py): type name -> options."""

from __future__ import annotations

from typing import Any

SPECS: dict[str, dict[str, Any]] = {
    "impute": {"columns": ["amount", "qty", "city"], "strategy": "most_frequent", "add_indicator": True},
    "scale": {"columns": ["amount", "qty"], "method": "robust"},
    "onehot": {"columns": ["city", "flag"], "min_frequency": 2},
    "ordinal": {"columns": ["city"]},
    "derive": {"columns": {"per_item": "amount / (qty + 1)", "big": "amount > 2 and qty >= 1", "half": "qty / 2"}},
    "keep": {"columns": ["qty", "amount"]},
    "drop": {"columns": ["flag", "nothing"]},
}
