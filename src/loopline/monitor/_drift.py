"""Per-feature data drift between a reference frame (training data) and a current frame (recent inputs).

Each feature gets a PSI (see :mod:`loopline.monitor._psi`) and the drift test its config chooses from
:data:`~loopline.monitor._drift_tests.DRIFT_TESTS` (by default KS for numeric, chi-square for categorical,
see :mod:`loopline.monitor._stattests`). The verdict rule is :func:`drift_verdict`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

import polars as pl

from loopline.core.config import DriftConfig
from loopline.core.errors import ConfigError, DataError, did_you_mean
from loopline.monitor._drift_tests import (
    DRIFT_TESTS,
    DriftTest,
    DriftTestResult,
    Kind,
    as_categorical,
    as_numeric,
)
from loopline.monitor._psi import series_psi

MIN_ROWS = 1
"""Rows each frame needs for a drift report (a retrain decision needs more, see ``decide_retrain``)."""


@dataclass(frozen=True)
class FeatureDrift:
    """Drift of one feature. ``n_reference``/``n_current`` count rows, nulls included.

    ``test`` names the registered drift test that compared it (``"ks"`` and ``"chi2"`` by default);
    ``p_value`` is None when that test is a distance. A skipped test has statistic 0.0 and p-value 1.0
    (None for a distance). ``reason`` explains the verdict in words.
    """

    feature: str
    kind: Kind
    psi: float
    test: str
    statistic: float
    p_value: float | None
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
    numeric feature is not numeric; ConfigError when a feature is listed twice or no feature is given,
    or when the config names a drift test that is not registered or does not take that kind of column.
    """
    _check_features(numeric, categorical)
    tests = chosen_tests(config, numeric, categorical)
    for frame, side in ((reference, "reference"), (current, "current")):
        _check_frame(frame, side, [*numeric, *categorical])
    features = [_drift(reference, current, name, "numeric", *tests[name], config) for name in numeric]
    features += [_drift(reference, current, name, "categorical", *tests[name], config) for name in categorical]
    drifted = [feature.feature for feature in features if feature.drifted]
    return DriftReport(features, drifted, len(drifted) >= config.min_drifted_features, config)


def chosen_tests(config: DriftConfig, numeric: list[str], categorical: list[str]) -> dict[str, tuple[str, DriftTest]]:
    """Each feature's drift test, as (registered name, test); ConfigError naming the key when one cannot be used.

    A feature gets the test ``config.tests`` names for it, else ``numeric_test`` or ``categorical_test``.
    """
    kinds: dict[str, Kind] = dict.fromkeys(numeric, "numeric")
    kinds.update(dict.fromkeys(categorical, "categorical"))
    for feature in config.tests:
        if feature not in kinds:
            raise ConfigError(
                f"monitor.drift.tests names {feature!r}, which is not a monitored feature.",
                key=f"monitor.drift.tests.{feature}",
                hint=did_you_mean(feature, kinds) or f"Use one of the features: {', '.join(kinds)}.",
            )
    defaults: dict[Kind, tuple[str, DriftTest]] = {
        "numeric": (config.numeric_test, _test(config.numeric_test, "monitor.drift.numeric_test", "numeric")),
        "categorical": (
            config.categorical_test,
            _test(config.categorical_test, "monitor.drift.categorical_test", "categorical"),
        ),
    }
    chosen = {}
    for feature, kind in kinds.items():
        name = config.tests.get(feature)
        chosen[feature] = (
            defaults[kind] if name is None else (name, _test(name, f"monitor.drift.tests.{feature}", kind))
        )
    return chosen


def _test(name: str, key: str, kind: Kind) -> DriftTest:
    if name not in DRIFT_TESTS:
        known = DRIFT_TESTS.names()
        raise ConfigError(
            f"{key}: unknown drift test {name!r}.",
            key=key,
            hint=did_you_mean(name, known) or f"Known drift tests: {', '.join(known)}.",
        )
    test = DRIFT_TESTS.get(name)
    if kind not in test.kinds:
        fits = [other for other in DRIFT_TESTS.names() if kind in DRIFT_TESTS.get(other).kinds]
        raise ConfigError(
            f"{key}: drift test {name!r} takes {' and '.join(test.kinds)} columns, not {kind} ones.",
            key=key,
            hint=f"Choose a test for {kind} columns: {', '.join(fits)}.",
        )
    return test


def drift_verdict(
    psi_value: float,
    p_value: float | None,
    config: DriftConfig,
    *,
    statistic: float = 0.0,
    threshold: float | None = None,
) -> tuple[bool, str]:
    """Whether a feature drifted, and why.

    Drifted when PSI > ``psi_threshold``, or when p-value < ``config.p_value`` *and* PSI >
    ``psi_threshold / 2``. The PSI floor on the test keeps large samples, where any trivial shift is
    significant, from flagging shifts too small to matter. A distance-only test (``p_value`` None) flags
    drift when its ``statistic`` exceeds its own ``threshold``; without a threshold PSI alone decides.
    """
    threshold_psi, half, alpha = config.psi_threshold, config.psi_threshold / 2, config.p_value
    if psi_value > threshold_psi:
        return True, f"PSI {psi_value:.3f} > {threshold_psi:g}"
    if p_value is None:
        return _distance_verdict(psi_value, threshold_psi, statistic, threshold)
    if p_value < alpha and psi_value > half:
        return True, f"p-value {p_value:.2g} < {alpha:g} and PSI {psi_value:.3f} > {half:g}"
    if p_value < alpha:
        return False, f"p-value {p_value:.2g} < {alpha:g} but PSI {psi_value:.3f} <= {half:g}: too small"
    return False, f"PSI {psi_value:.3f} <= {threshold_psi:g} and p-value {p_value:.2g} >= {alpha:g}"


def _distance_verdict(
    psi_value: float, threshold_psi: float, statistic: float, threshold: float | None
) -> tuple[bool, str]:
    if threshold is None:
        return False, f"PSI {psi_value:.3f} <= {threshold_psi:g} (the test is a distance without a threshold)"
    if statistic > threshold:
        return True, f"distance {statistic:.3g} > {threshold:g}"
    return False, f"PSI {psi_value:.3f} <= {threshold_psi:g} and distance {statistic:.3g} <= {threshold:g}"


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


def _drift(
    reference: pl.DataFrame,
    current: pl.DataFrame,
    name: str,
    kind: Kind,
    test_name: str,
    test: DriftTest,
    config: DriftConfig,
) -> FeatureDrift:
    """One feature: its column normalised for its kind (the contract's input), its PSI, its test, the verdict."""
    normalise = as_numeric if kind == "numeric" else as_categorical
    ref, cur = normalise(reference.get_column(name)), normalise(current.get_column(name))
    psi_value, unseen = series_psi(ref, cur, config.bins)
    feature = _feature(
        name, kind, test_name, psi_value, test.compare(ref, cur), reference.height, current.height, config
    )
    if unseen:
        share = unseen / current.height
        return replace(feature, reason=f"{feature.reason}; {share:.1%} of current rows in unseen categories")
    return feature


def _feature(
    name: str,
    kind: Kind,
    test: str,
    psi_value: float,
    result: DriftTestResult,
    n_reference: int,
    n_current: int,
    config: DriftConfig,
) -> FeatureDrift:
    drifted, reason = drift_verdict(
        psi_value, result.p_value, config, statistic=result.statistic, threshold=result.threshold
    )
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
