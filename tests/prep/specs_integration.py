"""Conformance specs of the integration transforms (see test_transforms_conform.py); the shared frames."""

from __future__ import annotations

from typing import Any

CITIES = [
    {"city": "lyon", "population": 522_000, "area": 47.87, "capital": False, "region": "ARA"},
    {"city": "paris", "population": 2_100_000, "area": float("nan"), "capital": True, "region": None},
    {"city": "nice", "population": None, "area": float("inf"), "capital": False, "region": "PACA"},
    {"city": None, "population": 1, "area": 1.0, "capital": True, "region": "null key: never matches"},
]

SPECS: dict[str, list[dict[str, Any]]] = {
    "lookup": [
        {"on": ["city"], "rows": CITIES},
        {"on": ["city", "flag"], "rows": [{"city": "lyon", "flag": True, "score": 1.5}], "prefix": "lk_"},
        {"on": ["qty"], "rows": [{"qty": 1, "tier": "low"}, {"qty": 4, "tier": "high"}], "columns": ["tier"]},
    ],
}
