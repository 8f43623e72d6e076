"""Conformance specs of the cleaning and parsing transforms (see test_transforms_conform.py).

The frames hold text to convert: clean columns (for ``errors: fail``) and dirty ones (for ``errors: null``),
messy strings, ISO and formatted dates with offsets, duplicates and missing values.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import polars as pl

TARGET = "label"

TRAIN = pl.DataFrame(
    {
        "Mixed Case": ["1", "2", "2", None, "5", "6"],
        "amount": [1.5, None, 3.0, float("nan"), 5.0, 100.0],
        "qty": [1, 2, 2, 4, 0, 3],
        "city": ["  Lyon ", "PARIS", "PARIS", None, "ｎｉｃｅ", "lyon\u3000\tcentre"],
        "flag": [True, False, False, None, True, False],
        "n_text": ["1", " 2.5 ", " 2.5 ", "-1e3", "inf", "NaN"],
        "i_text": ["1", "+2", "+2", "-30", None, "007"],
        "b_text": ["true", "No", "No", "Y", "0", None],
        "dirty": ["1.5", "abc", "abc", "", "1_0", "0x10"],
        "when": [
            "2024-03-10",
            "2024-03-10T17:45:00Z",
            "2024-03-10T17:45:00Z",
            None,
            "2024-03-10 08:00+02:00",
            "2023-12-31T23:59:59.123456789-0130",
        ],
        "when_fmt": [
            "10/03/2024 17:45",
            "1/1/2024 0:00",
            "1/1/2024 0:00",
            None,
            "29/02/2024 12:00",
            "31/12/2023 23:59",
        ],
        "day": [date(2024, 1, 1), None, None, date(2024, 2, 29), date(1999, 12, 31), date(2000, 1, 1)],
        "label": [0, 1, 1, 0, 1, 0],
    }
)
TEST = pl.DataFrame(
    {
        "Mixed Case": ["10", "x", None, " 3 "],
        "amount": [None, 1e9, -2.0, float("inf")],
        "qty": [5, None, 0, 1],
        "city": ["", " ", "ＲＯＭＥ  ", "ﬁnance"],
        "flag": [None, True, False, True],
        "n_text": ["3", ".5", "+1E-2", None],
        "i_text": ["9223372036854775807", "-0", None, "12"],
        "b_text": ["YES", "f", None, "1"],
        "dirty": ["nope", None, "2.", "1e999"],
        "when": ["2024-02-29T00:00:00+14:00", "2000-01-01 00:00", None, "9999-12-31T23:59:59Z"],
        "when_fmt": ["1/2/2025 9:05", None, "31/1/2025 00:00", "28/2/2023 23:59"],
        "day": [date(2030, 6, 1), None, date(1970, 1, 1), date(2024, 2, 29)],
        "label": [1, 0, 1, 0],
    }
)

SPECS: dict[str, dict[str, Any] | list[dict[str, Any]]] = {
    "rename": [
        {"columns": {"amount": "price", "Mixed Case": "mixed"}},
        {"rule": "snake_case"},
        {"rule": "lower"},
        {"rule": "prefix", "text": "raw_", "columns": ["qty", "city"]},
        {"rule": "suffix", "text": "_v1"},
    ],
    "cast": [
        {
            "columns": {"n_text": "float", "i_text": "int", "b_text": "bool", "qty": "str", "flag": "int"},
            "errors": "fail",
        },
        {
            "columns": {"dirty": "float", "Mixed Case": "int", "amount": "int", "qty": "bool", "flag": "str"},
            "errors": "null",
        },
        {"columns": {"amount": "str", "day": "int", "city": "bool"}, "errors": "null"},
    ],
    "parse_dates": [
        {"columns": ["when", "day"]},
        {"columns": ["when_fmt"], "format": "%d/%m/%Y %H:%M"},
        {"columns": ["dirty", "city", "qty"], "errors": "null"},
    ],
    "strings": [
        {"columns": ["city", "dirty"]},
        {"columns": ["city"], "case": "lower"},
        {"columns": ["city"], "case": "upper", "normalize": False, "collapse_spaces": False, "empty_to_null": False},
    ],
    "dedupe": [{}, {"columns": ["qty", "flag"], "keep": "last"}],
    "filter": {"expr": "amount > 2 or qty == 0"},
    "drop_missing": [{}, {"columns": ["amount", "city"], "how": "all"}],
    "outliers": [
        {"columns": ["amount", "qty"]},
        {"columns": ["amount", "flag"], "method": "quantile", "lower": 0.1, "upper": 0.9},
        {"columns": ["amount"], "factor": 0.5, "action": "drop"},
    ],
}
