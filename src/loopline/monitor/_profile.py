"""The reference profile: what drift checks need of the training frame, small enough to store with a model.

Per numeric feature: a sorted sample of the non-null values (all of them up to :data:`SAMPLE_SIZE`), quantile
bin edges with their counts, mean, standard deviation and missing share. Per categorical feature: the counts of
the :data:`MAX_CATEGORIES` most common categories (the rest pooled into :data:`OTHER`) and the missing share.
``drift_report(profile, current, ...)`` gives the verdicts ``drift_report(frame, current, ...)`` gives, as long
as the sample holds every value and no category was pooled, and skips re-reading the training frame.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import polars as pl

from loopline.core.errors import DataError, did_you_mean
from loopline.monitor._drift_tests import Kind
from loopline.monitor._psi import DEFAULT_BINS, numeric_counts, quantile_edges
from loopline.monitor._summary import (
    CategoricalSummary,
    NumericSummary,
    Summary,
    categorical_summary,
    numeric_summaries,
    numeric_summary,
)

SAMPLE_SIZE = 100_000
"""Most non-null values kept per numeric feature (a seeded uniform sample beyond it)."""

MAX_CATEGORIES = 10_000
"""Most categories kept per categorical feature; rarer ones pool into :data:`OTHER`."""

OTHER = "<other>"
"""The pooled category of a profile whose column had more than :data:`MAX_CATEGORIES` categories."""

FORMAT = 1
"""The version of :meth:`ReferenceProfile.to_dict`'s layout."""


@dataclass(frozen=True, eq=False)
class NumericProfile:
    """One numeric feature of a profile (see the module docstring)."""

    summary: NumericSummary
    mean: float | None
    std: float | None
    edges: list[float]
    bin_counts: list[int]


@dataclass(frozen=True)
class CategoricalProfile:
    """One categorical feature of a profile: its category counts (``OTHER`` pooled) and nulls."""

    summary: CategoricalSummary
    pooled: bool = False


ColumnProfile = NumericProfile | CategoricalProfile


@dataclass(frozen=True, eq=False)
class ReferenceProfile:
    """The drift reference of a model: ``n_rows`` training rows summarised per feature in ``columns``.

    ``outputs`` profiles the model's outputs on the validation split (column ``prediction`` and, for a
    classifier, ``probability:{class}``), ``labels`` the training labels (column ``label``); both are None in
    profiles stored before they existed (see :func:`~loopline.monitor.prediction_drift`).
    """

    n_rows: int
    columns: dict[str, ColumnProfile]
    outputs: ReferenceProfile | None = None
    labels: ReferenceProfile | None = None

    @classmethod
    def from_frame(
        cls,
        frame: pl.DataFrame,
        *,
        numeric: list[str],
        categorical: list[str],
        sample: int = SAMPLE_SIZE,
        max_categories: int = MAX_CATEGORIES,
        seed: int = 0,
    ) -> ReferenceProfile:
        """Profile ``frame``'s features; DataError naming a missing or non-numeric column."""
        for name in [*numeric, *categorical]:
            if name not in frame.columns:
                raise DataError(
                    f"the training frame has no column {name!r}.",
                    column=name,
                    hint=did_you_mean(name, frame.columns) or f"Use one of its columns: {', '.join(frame.columns)}.",
                )
        columns: dict[str, ColumnProfile] = {name: _numeric(frame.get_column(name), sample, seed) for name in numeric}
        columns.update({name: _categorical(frame.get_column(name), max_categories) for name in categorical})
        return cls(frame.height, columns)

    def summaries(self, kinds: Mapping[str, Kind]) -> dict[str, Summary]:
        """The summary of each feature, by name; DataError when the profile lacks one or holds another kind."""
        found: dict[str, Summary] = {}
        for name, kind in kinds.items():
            column = self.columns.get(name)
            if column is None:
                raise DataError(
                    f"the reference profile has no feature {name!r}.",
                    column=name,
                    hint=did_you_mean(name, self.columns) or "Profile the training frame with every monitored feature.",
                )
            if (kind == "numeric") != isinstance(column, NumericProfile):
                held = "numeric" if isinstance(column, NumericProfile) else "categorical"
                raise DataError(
                    f"the reference profile holds {name!r} as {held}, not {kind}.",
                    column=name,
                    hint=f"List {name!r} under {held}, or profile the training frame again.",
                )
            found[name] = column.summary
        return found

    def fold(self, name: str, current: Summary) -> Summary:
        """``current`` with the categories the profile pooled (and unseen ones) folded into :data:`OTHER`."""
        column = self.columns.get(name)
        if not (isinstance(column, CategoricalProfile) and column.pooled and isinstance(current, CategoricalSummary)):
            return current
        kept = column.summary.counts
        counts = {key: count for key, count in current.counts.items() if key in kept and key != OTHER}
        other = current.count - sum(counts.values())
        return CategoricalSummary(dict(sorted({**counts, **({OTHER: other} if other else {})}.items())), current.n_null)

    def with_outputs(self, outputs: ReferenceProfile | None, labels: ReferenceProfile | None) -> ReferenceProfile:
        """This profile with the profiles of the model's outputs and of the training labels."""
        return replace(self, outputs=outputs, labels=labels)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (a numeric sample as base64 of little-endian float64); :meth:`from_dict` reads it."""
        data = {"format": FORMAT, "n_rows": self.n_rows, "columns": {k: _dump(v) for k, v in self.columns.items()}}
        for name, part in (("outputs", self.outputs), ("labels", self.labels)):
            if part is not None:
                data[name] = part.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReferenceProfile:
        """Rebuild a profile written by :meth:`to_dict`; DataError for another format."""
        if data.get("format") != FORMAT:
            raise DataError(
                f"reference profile format {data.get('format')!r} is not {FORMAT}.",
                hint="Profile the training frame again with this version of loopline.",
            )
        columns = {name: _load(column) for name, column in data["columns"].items()}
        outputs, labels = (cls.from_dict(data[key]) if data.get(key) else None for key in ("outputs", "labels"))
        return cls(int(data["n_rows"]), columns, outputs, labels)

    def to_json(self) -> str:
        """:meth:`to_dict` as JSON text."""
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str) -> ReferenceProfile:
        """Read a profile written by :meth:`to_json`."""
        return cls.from_dict(json.loads(text))


def summarise_frame(frame: pl.DataFrame, kinds: Mapping[str, Kind]) -> dict[str, Summary]:
    """Each feature's summary, by its kind (DataError for a numeric feature that is not numeric)."""
    numeric = numeric_summaries(frame, [name for name, kind in kinds.items() if kind == "numeric"])
    return {
        name: numeric[name] if kind == "numeric" else categorical_summary(frame.get_column(name))
        for name, kind in kinds.items()
    }


def _numeric(series: pl.Series, sample: int, seed: int) -> NumericProfile:
    summary = numeric_summary(series, sample=sample, seed=seed)
    values = summary.values[np.isfinite(summary.values)]
    edges = quantile_edges(summary.values, DEFAULT_BINS)
    counts = numeric_counts(summary.values, edges, summary.n_null)
    mean = float(values.mean()) if values.size else None
    std = float(values.std()) if values.size else None
    return NumericProfile(summary, mean, std, edges.tolist(), counts.tolist())


def _categorical(series: pl.Series, max_categories: int) -> CategoricalProfile:
    summary = categorical_summary(series)
    if len(summary.counts) <= max_categories:
        return CategoricalProfile(summary)
    ranked = sorted(summary.counts.items(), key=lambda item: (-item[1], item[0]))
    kept = dict(ranked[:max_categories])
    kept[OTHER] = summary.count - sum(kept.values())
    return CategoricalProfile(CategoricalSummary(dict(sorted(kept.items())), summary.n_null), pooled=True)


def _dump(column: ColumnProfile) -> dict[str, Any]:
    if isinstance(column, NumericProfile):
        summary = column.summary
        return {
            "kind": "numeric",
            "values": base64.b64encode(summary.values.astype("<f8").tobytes()).decode("ascii"),
            "count": summary.count,
            "n_null": summary.n_null,
            "mean": column.mean,
            "std": column.std,
            "edges": column.edges,
            "bin_counts": column.bin_counts,
        }
    return {
        "kind": "categorical",
        "counts": column.summary.counts,
        "n_null": column.summary.n_null,
        "pooled": column.pooled,
    }


def _load(data: Mapping[str, Any]) -> ColumnProfile:
    if data["kind"] == "numeric":
        values = np.frombuffer(base64.b64decode(data["values"]), dtype="<f8").astype(np.float64)
        summary = NumericSummary(values, int(data["count"]), int(data["n_null"]))
        return NumericProfile(summary, data["mean"], data["std"], list(data["edges"]), list(data["bin_counts"]))
    counts = {str(key): int(count) for key, count in data["counts"].items()}
    return CategoricalProfile(CategoricalSummary(counts, int(data["n_null"])), bool(data["pooled"]))
