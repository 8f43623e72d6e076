"""Conformance specs of the text transforms (see test_transforms_conform.py): their own frames."""

from __future__ import annotations

from typing import Any

import polars as pl

TRAIN = pl.DataFrame(
    {
        "review": ["Great product, 5 stars", "", None, "NOT worth it\tat all", "Très bien  ÉTÉ 2024", "ok"],
        "title": ["A", "b c", "D-E f", None, "x\u00a0y", "z"],
        "label": [1, 0, 0, 0, 1, 1],
    }
)
TEST = pl.DataFrame(
    {
        "review": ["unseen WORDS 123", None, "   ", "\u2028line\u2029break\u3000wide", "ǅ ß İ ﬃ"],
        "title": ["A", None, "", "new", "Q R"],
    }
)

SPECS: dict[str, list[dict[str, Any]]] = {
    "text_stats": [{"columns": ["review"]}, {"columns": ["review", "title"], "digits": True, "upper": True}],
    "hashing": [
        {"columns": ["review"]},
        {"columns": ["review", "title"], "n_buckets": 5, "lowercase": False, "alternate_sign": True},
    ],
}
