"""What the monitoring pages read of a model's stored windows: the drift heat map, accuracy, predictions and
service figures per window, and the reference-vs-window overlay of one feature.

Everything but the overlay comes from the window records the orchestrator stored (no row of the prediction log
is read); the overlay reads one column of one window's rows (see :func:`overlay_data`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from loopline.core.errors import LooplineError
from loopline.ui._page import Data, UIError

if TYPE_CHECKING:
    import polars as pl

    from loopline.monitor import FeatureDrift, ReferenceProfile, WindowResult
    from loopline.store import ModelVersion, Store

STATS = ("psi", "statistic", "p_value", "drifted")
"""What the heat map colours (``?stat=``): PSI, the drift test's statistic, its p-value, or the verdict."""
CLOSE_COMMAND = "loopline monitor PIPELINE --window 1d"
"""The command that closes windows, named by the empty states."""
OVERLAY_ROWS = 10_000
"""The most rows of one window the overlay reads (its first ones): a page costs the same on a busy window."""
STATES = {"drifted": 1, "stable": 0}
"""The verdict as a number for the heat map (anything else, no verdict: -1)."""


def window_rows(windows: Sequence[WindowResult]) -> list[Data]:
    """One entry per window: its number, span, rows and how many of its features drifted."""
    from loopline.report import window_label

    return [
        {
            "seq": w.seq,
            "label": window_label(w),
            "start": w.start.isoformat(),
            "end": w.end.isoformat(),
            "rows": w.health.rows,
            "drifted_features": w.drifted_features,
            "features_checked": None if w.drift is None else len(w.drift.features),
            "drift_skipped": w.drift_skipped,
        }
        for w in windows
    ]


def drift_data(windows: Sequence[WindowResult]) -> Data:
    """Features x windows: each cell's verdict (``drifted``, ``stable``, ``not enough data``, ``no data``...),
    PSI, the test's statistic and p-value (None where the window has no figure for the feature)."""
    from loopline.report import report_cell

    features = list(dict.fromkeys(f.feature for w in windows if w.drift for f in w.drift.features))
    cells = []
    for name in features:
        row = []
        for window in windows:
            state, psi = report_cell(window.drift, name)
            found = _feature(window, name)
            row.append(
                {
                    "state": state,
                    "psi": psi,
                    "statistic": None if found is None else found.statistic,
                    "p_value": None if found is None else found.p_value,
                    "test": None if found is None else found.test,
                }
            )
        cells.append(row)
    return {"features": features, "cells": cells}


def _feature(window: WindowResult, name: str) -> FeatureDrift | None:
    if window.drift is None:
        return None
    return next((f for f in window.drift.features if f.feature == name), None)


def accuracy_data(windows: Sequence[WindowResult]) -> Data:
    """Per metric, each window's realised value and its estimate ``[value, lower, upper]``; label coverage."""
    realised = sorted({k for w in windows for k in (w.realised_metrics or {})})
    estimated = sorted({k for w in windows for k in estimates(w)})
    return {
        "label_coverage": [w.label_coverage for w in windows],
        "labelled_rows": [w.labelled_rows for w in windows],
        "realised": {m: [(w.realised_metrics or {}).get(m) for w in windows] for m in realised},
        "estimated": {m: [list(estimates(w).get(m, (None, None, None))) for w in windows] for m in estimated},
    }


def estimates(window: WindowResult) -> dict[str, tuple[float | None, float | None, float | None]]:
    """``metric -> (value, lower, upper)``: the band from ``estimated_bands``, else ``METRIC_lower/_upper``."""
    given = window.estimated_metrics or {}
    bands = window.estimated_bands or {}
    found: dict[str, tuple[float | None, float | None, float | None]] = {}
    for name, value in given.items():
        if name.endswith(("_lower", "_upper")):
            continue
        lower, upper = bands.get(name, (given.get(f"{name}_lower"), given.get(f"{name}_upper")))
        found[name] = (value, lower, upper)
    return found


def prediction_data(windows: Sequence[WindowResult]) -> Data:
    """The prediction distribution per window: each frequent class's share, or the numeric p50/mean/min/max."""
    from loopline.report import prediction_lines

    label, series = prediction_lines(windows)
    return {"label": label, "series": series}


def service_data(windows: Sequence[WindowResult]) -> Data:
    """Latency p50/p99, throughput, error rate and failed requests by kind, per window."""
    return {
        "latency_p50_ms": [w.health.latency_p50_ms for w in windows],
        "latency_p99_ms": [w.health.latency_p99_ms for w in windows],
        "throughput_rps": [w.health.throughput_rps for w in windows],
        "error_rate": [w.health.error_rate for w in windows],
        "errors": [dict(w.health.errors) for w in windows],
    }


def overlay_data(store: Store, model: str, window: WindowResult, feature: str | None) -> Data:
    """One feature's bins in the reference and in ``window`` (``feature`` None: its first drifted feature, else
    its first one); 400 naming ``feature`` when the window's drift report lacks it.

    The reference side is the stored profile of the version the window was compared with (else the reference
    sample stored with that version, profiled here). The window's records keep no histogram, so the window side
    reads that window's rows of that one input field from the prediction log
    (:meth:`~loopline.store.PredictionLog.input_values`: the database extracts the field): one window is bounded
    (a time window's span, a count window's rows), the query walks the ``(model_name, created_at)`` index, and at
    most :data:`OVERLAY_ROWS` rows are read (the window's first ones; ``window_rows_cut`` says when it held more).
    """
    from loopline.monitor import WindowSpec, feature_overlay

    checked = [f.feature for f in window.drift.features] if window.drift else []
    if not checked:
        raise UIError(404, f"window {window.seq} of {model} has no drift report to compare.", hint=pick_hint())
    drifted = [f.feature for f in window.drift.features if f.drifted] if window.drift else []
    feature = feature or (drifted or checked)[0]
    if feature not in checked:
        raise UIError(
            400,
            f"the parameter 'feature' names {feature[:80]!r}, which window {window.seq} did not check.",
            hint=f"Use one of: {', '.join(checked[:20])}.",
        )
    found = _feature(window, feature)
    base: Data = {
        "window": window.seq,
        "feature": feature,
        "features": checked,
        "psi": None if found is None else found.psi,
        "state": None if found is None else found.status,
        "reference_version": window.reference_version,
    }
    try:
        version = store.models.get(model, window.reference_version)
        profile, source = _reference_profile(store, version, feature, found)
    except LooplineError as error:
        return {**base, "note": f"the reference of this window is not available: {error.message}"}
    end = window.end + timedelta(microseconds=1) if WindowSpec.parse(window.spec).by_count else window.end
    values, cut = _window_column(store, model, feature, window.start, end)
    overlay = feature_overlay(profile, feature, values)
    return {
        **base,
        "reference_version": version.version,
        "source": source,
        "kind": overlay.kind,
        "bins": overlay.bins,
        "reference_counts": overlay.reference,
        "window_counts": overlay.current,
        "reference_shares": overlay.shares("reference"),
        "window_shares": overlay.shares("current"),
        "window_rows_read": values.len(),
        "window_rows_cut": cut,
    }


def pick_hint() -> str:
    return "Pick a window with a drift report from the heat map (its number goes in ?window=SEQ)."


def _reference_profile(
    store: Store, version: ModelVersion, feature: str, found: FeatureDrift | None
) -> tuple[ReferenceProfile, str]:
    """The version's stored profile, else a profile of its stored reference sample's ``feature`` column."""
    from loopline.core.errors import DataError
    from loopline.monitor import ReferenceProfile

    if version.profile_digest is not None:
        profile = ReferenceProfile.from_json(store.artifacts.get_bytes(version.profile_digest).decode())
        if feature in profile.columns:
            return profile, "profile"
    if version.reference_digest is None:
        raise DataError(f"version {version.version} of {version.name} stores no reference.")
    sample = store.artifacts.get_table(version.reference_digest)
    if feature not in sample.columns:
        raise DataError(f"the reference sample of version {version.version} has no column {feature!r}.")
    numeric = found is not None and found.kind == "numeric"
    profile = ReferenceProfile.from_frame(
        sample.select(feature), numeric=[feature] if numeric else [], categorical=[] if numeric else [feature]
    )
    return profile, "reference sample"


def _window_column(store: Store, model: str, feature: str, start: Any, end: Any) -> tuple[pl.Series, bool]:
    """The values of ``feature`` in the first :data:`OVERLAY_ROWS` rows logged in ``[start, end)``, and whether
    the window held more (the rest are not read)."""
    import polars as pl

    values, cut = store.predictions.input_values(model, feature, start=start, end=end, limit=OVERLAY_ROWS)
    return pl.Series(feature, values, strict=False), cut
