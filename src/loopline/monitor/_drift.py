"""Per-feature data drift between a reference frame (training data) and a current frame (recent inputs).

Each feature gets a PSI (see :mod:`loopline.monitor._psi`) and a two-sample test (KS for numeric,
chi-square for categorical, see :mod:`loopline.monitor._stattests`). The verdict rule is
:func:`drift_verdict`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import numpy as np
import polars as pl

from loopline.core.config import DriftConfig
from loopline.core.errors import ConfigError, DataError, did_you_mean
from loopline.monitor._psi import (
    categorical_counts,
    category_counts,
    numeric_counts,
    psi,
    quantile_edges,
)
from loopline.monitor._stattests import TestResult, chi2_test, ks_test

MIN_ROWS = 1
"""Rows each frame needs for a drift report (a retrain decision needs more, see ``decide_retrain``)."""


@dataclass(frozen=True)
class FeatureDrift:
    """Drift of one feature. ``n_reference``/``n_current`` count rows, nulls included.

    ``test`` is ``"ks"`` (numeric) or ``"chi2"`` (categorical); a skipped test has statistic 0.0 and
    p-value 1.0. ``reason`` explains the verdict in words.
    """

    feature: str
    kind: Literal["numeric", "categorical"]
    psi: float
    test: Literal["ks", "chi2"]
    statistic: float
    p_value: float
    drifted: bool
    n_reference: int
    n_current: int
    reason: str = ""


@dataclass(frozen=True)
class DriftReport:
    """Drift of every feature; ``drifted`` names the drifted ones in feature order.

    ``dataset_drift`` is true when at least ``config.min_drifted_features`` features drifted.
    """

    features: list[FeatureDrift]
    drifted: list[str]
    dataset_drift: bool
    config: DriftConfig = field(default_factory=DriftConfig)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict; :meth:`from_dict` reads it back."""
        return {
            "features": [asdict(feature) for feature in self.features],
            "drifted": list(self.drifted),
            "dataset_drift": self.dataset_drift,
            "config": self.config.model_dump(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DriftReport:
        """Rebuild a report written by :meth:`to_dict`."""
        return cls(
            features=[FeatureDrift(**feature) for feature in data["features"]],
            drifted=list(data["drifted"]),
            dataset_drift=bool(data["dataset_drift"]),
            config=DriftConfig(**data.get("config", {})),
        )


def drift_report(
    reference: pl.DataFrame,
    current: pl.DataFrame,
    *,
    numeric: list[str],
    categorical: list[str],
    config: DriftConfig = DriftConfig(),
) -> DriftReport:
    """Compare ``current`` with ``reference`` feature by feature.

    Raises DataError when a frame has no rows or lacks a feature (with a did-you-mean), or when a
    numeric feature is not numeric; ConfigError when a feature is listed twice or no feature is given.
    """
    _check_features(numeric, categorical)
    for frame, side in ((reference, "reference"), (current, "current")):
        _check_frame(frame, side, [*numeric, *categorical])
    features = [_numeric_drift(reference, current, name, config) for name in numeric]
    features += [_categorical_drift(reference, current, name, config) for name in categorical]
    drifted = [feature.feature for feature in features if feature.drifted]
    return DriftReport(features, drifted, len(drifted) >= config.min_drifted_features, config)


def drift_verdict(psi_value: float, p_value: float, config: DriftConfig) -> tuple[bool, str]:
    """Whether a feature drifted, and why.

    Drifted when PSI > ``psi_threshold``, or when p-value < ``config.p_value`` *and* PSI >
    ``psi_threshold / 2``. The PSI floor on the test keeps large samples, where any trivial shift is
    significant, from flagging shifts too small to matter.
    """
    threshold, half, alpha = config.psi_threshold, config.psi_threshold / 2, config.p_value
    if psi_value > threshold:
        return True, f"PSI {psi_value:.3f} > {threshold:g}"
    if p_value < alpha and psi_value > half:
        return True, f"p-value {p_value:.2g} < {alpha:g} and PSI {psi_value:.3f} > {half:g}"
    if p_value < alpha:
        return False, f"p-value {p_value:.2g} < {alpha:g} but PSI {psi_value:.3f} <= {half:g}: too small"
    return False, f"PSI {psi_value:.3f} <= {threshold:g} and p-value {p_value:.2g} >= {alpha:g}"


def _check_features(numeric: list[str], categorical: list[str]) -> None:
    names = [*numeric, *categorical]
    if not names:
        raise ConfigError("no features to compare.", hint="Pass at least one name in numeric or categorical.")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ConfigError(
            f"feature {repeated[0]!r} is listed more than once.",
            key=repeated[0],
            hint="List each feature once, under numeric or under categorical.",
        )


def _check_frame(frame: pl.DataFrame, side: str, names: list[str]) -> None:
    if frame.height < MIN_ROWS:
        raise DataError(
            f"the {side} frame has {frame.height} rows; a drift report needs at least {MIN_ROWS}.",
            hint="Pass a non-empty frame (for current data, wait until predictions are logged).",
        )
    for name in names:
        if name not in frame.columns:
            suggestion = did_you_mean(name, frame.columns)
            raise DataError(
                f"the {side} frame has no column {name!r}.",
                column=name,
                hint=suggestion or f"Use one of its columns: {', '.join(frame.columns)}.",
            )


def _numeric_values(frame: pl.DataFrame, name: str) -> tuple[np.ndarray, int]:
    """Non-null finite-or-infinite values as float64 and the null count (NaN counts as null)."""
    series = frame.get_column(name)
    if not (series.dtype.is_numeric() or series.dtype in (pl.Boolean, pl.Null)):
        raise DataError(
            f"numeric feature {name!r} has dtype {series.dtype}.",
            column=name,
            hint="List it under categorical, or cast it to a number first.",
        )
    values = series.cast(pl.Float64).fill_nan(None)
    return values.drop_nulls().to_numpy(), values.null_count()


def _numeric_drift(reference: pl.DataFrame, current: pl.DataFrame, name: str, config: DriftConfig) -> FeatureDrift:
    ref_values, ref_null = _numeric_values(reference, name)
    cur_values, cur_null = _numeric_values(current, name)
    edges = quantile_edges(ref_values, config.bins)
    value = psi(numeric_counts(ref_values, edges, ref_null), numeric_counts(cur_values, edges, cur_null))
    result = ks_test(ref_values, cur_values)
    return _feature(name, "numeric", "ks", value, result, reference.height, current.height, config)


def _categorical_drift(reference: pl.DataFrame, current: pl.DataFrame, name: str, config: DriftConfig) -> FeatureDrift:
    ref_series, cur_series = reference.get_column(name), current.get_column(name)
    ref_counts, cur_counts = category_counts(ref_series), category_counts(cur_series)
    categories = list(ref_counts)
    ref_bins, _ = categorical_counts(categories, ref_counts, ref_series.null_count())
    cur_bins, unseen = categorical_counts(categories, cur_counts, cur_series.null_count())
    result = chi2_test(ref_counts, cur_counts)
    feature = _feature(
        name, "categorical", "chi2", psi(ref_bins, cur_bins), result, reference.height, current.height, config
    )
    if unseen:
        share = unseen / current.height
        return replace(feature, reason=f"{feature.reason}; {share:.1%} of current rows in unseen categories")
    return feature


def _feature(
    name: str,
    kind: Literal["numeric", "categorical"],
    test: Literal["ks", "chi2"],
    psi_value: float,
    result: TestResult,
    n_reference: int,
    n_current: int,
    config: DriftConfig,
) -> FeatureDrift:
    drifted, reason = drift_verdict(psi_value, result.p_value, config)
    if result.skipped:
        reason = f"{reason}; {result.skipped}"
    return FeatureDrift(
        feature=name,
        kind=kind,
        psi=psi_value,
        test=test,
        statistic=result.statistic,
        p_value=result.p_value,
        drifted=drifted,
        n_reference=n_reference,
        n_current=n_current,
        reason=reason,
    )
