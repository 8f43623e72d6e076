"""Metrics per data slice: the model's metrics on the rows of each value of a categorical column.

A column's ``top`` most frequent values (ties: by value) are slices of their own; the
remaining rows form the slice :data:`OTHER`, and null values the slice ``"null"``.
Every slice reports its ``rows``; slices with fewer than ``min_rows`` rows report
nothing else, and metrics undefined on a slice (AUC with one class present) are left
out by :func:`compute_metrics`. Nothing warns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from loopline.bundle import compute_metrics, target_values
from loopline.core.errors import DataError

if TYPE_CHECKING:
    from loopline.bundle import ModelBundle

OTHER = "other"
"""The slice of the rows whose value is not among a column's top values."""

NULL = "null"
"""The slice of the rows whose value is null."""


def slice_metrics(
    bundle: ModelBundle, frame: pl.DataFrame, columns: list[str], *, top: int = 10, min_rows: int = 30
) -> dict[str, dict[str, dict[str, Any]]]:
    """``{column: {value: {"rows": n, metric: value, ...}}}`` of ``bundle`` on ``frame``.

    The model predicts ``frame`` once; each slice's metrics are ``compute_metrics`` on
    its rows. Values are keys as strings. Raises DataError for a column ``frame`` lacks.
    """
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(
            f"slice columns {missing} are not in the table.",
            column=missing[0],
            hint=f"Slice by columns of the input: {', '.join(frame.columns)}.",
        )
    if frame.height == 0:
        return {column: {} for column in columns}
    truth = target_values(frame, bundle.target)
    out = bundle.predict_table(frame)
    return {column: _column_slices(bundle, frame[column], truth, out, top, min_rows) for column in columns}


def slice_labels(values: pl.Series, top: int) -> np.ndarray:
    """Each row's slice: its value as a string when among the ``top`` most frequent, else OTHER / NULL."""
    counts = values.drop_nulls().value_counts(sort=False)
    ranked = sorted(zip(counts[values.name].to_list(), counts["count"].to_list(), strict=True), key=_rank)
    kept = {str(value) for value, _ in ranked[:top]}
    labels = [NULL if v is None else (str(v) if str(v) in kept else OTHER) for v in values.to_list()]
    return np.asarray(labels, dtype=object)


def _rank(item: tuple[Any, int]) -> tuple[int, str]:
    return -item[1], str(item[0])


def _column_slices(
    bundle: ModelBundle, values: pl.Series, truth: np.ndarray, out: dict[str, np.ndarray], top: int, min_rows: int
) -> dict[str, dict[str, Any]]:
    labels = slice_labels(values, top)
    result: dict[str, dict[str, Any]] = {}
    for label in sorted(set(labels.tolist()), key=lambda name: (-int((labels == name).sum()), name)):
        rows = labels == label
        entry: dict[str, Any] = {"rows": int(rows.sum())}
        if entry["rows"] >= min_rows:
            probability = out.get("probability")
            entry.update(
                compute_metrics(
                    bundle.task,
                    truth[rows],
                    out["prediction"][rows],
                    None if probability is None else probability[rows],
                    classes=bundle.classes,
                )
            )
        result[label] = entry
    return result
