"""Per-feature data drift between a reference (the training frame, or its stored :class:`ReferenceProfile`)
and a current frame (recent inputs).

Each feature is compared by the drift test its config chooses from
:data:`~loopline.monitor._drift_tests.DRIFT_TESTS` (``auto`` by default, see :mod:`loopline.monitor._auto`)
and gets a status: ``"drift"``, ``"no drift"`` or ``"not enough data"`` (a sample below the test's
``min_values``, or a test that could not run soundly). The verdict is the test's own rule: a p-value test
drifts when its p-value, corrected across the report's tests (Holm by default), is below ``p_value``; a
distance drifts above its threshold. A change in the missing share is checked the same way (as a two-category
column: missing, present). PSI is computed for every feature and reported; it decides only as the chosen test.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import numpy as np
import polars as pl

from loopline.core.config import AUTO, DriftConfig
from loopline.core.errors import ConfigError, DataError, did_you_mean
from loopline.monitor._auto import auto_test
from loopline.monitor._drift_tests import DRIFT_TESTS, DriftTest, DriftTestResult, Kind
from loopline.monitor._profile import ReferenceProfile, summarise_frame
from loopline.monitor._psi import summary_psi
from loopline.monitor._summary import Summary, missing_summary

MIN_ROWS = 1
"""Rows each frame needs for a drift report (a retrain decision needs more, see ``decide_retrain``)."""

Status = Literal["drift", "no drift", "not enough data"]
DRIFT: Status = "drift"
NO_DRIFT: Status = "no drift"
NOT_ENOUGH_DATA: Status = "not enough data"


@dataclass(frozen=True)
class FeatureDrift:
    """Drift of one feature. ``n_reference``/``n_current`` count rows, nulls included.

    ``test`` names the registered drift test that compared it (chosen by ``auto`` unless configured);
    ``p_value`` is None for a distance or when the test did not run. ``status`` is ``"drift"``,
    ``"no drift"`` or ``"not enough data"``; ``drifted`` is ``status == "drift"``. ``threshold``: the
    distance threshold, or the significance level of a p-value test; ``p_value_adjusted``: the p-value after
    the report's multiple-testing correction (what the verdict reads). ``missing_reference`` and
    ``missing_current`` are the null shares; ``missing_drifted`` says the missing share itself drifted.
    ``reason`` explains the verdict in words.
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
    status: str = ""
    threshold: float | None = None
    p_value_adjusted: float | None = None
    missing_reference: float = 0.0
    missing_current: float = 0.0
    missing_drifted: bool = False


@dataclass(frozen=True)
class DriftReport:
    """Drift of every feature; ``drifted`` names the drifted ones in feature order.

    ``dataset_drift`` is true when at least ``config.min_drifted_features`` features drifted. With p-value
    tests corrected by Holm (the default), the chance that a report on undrifted data flags any feature is at
    most ``config.p_value``. ``not_enough_data`` names the features without a verdict.
    """

    features: list[FeatureDrift]
    drifted: list[str]
    dataset_drift: bool
    config: DriftConfig = field(default_factory=DriftConfig)

    @property
    def not_enough_data(self) -> list[str]:
        """Features whose samples were too small for a verdict."""
        return [feature.feature for feature in self.features if feature.status == NOT_ENOUGH_DATA]

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
        """Rebuild a report written by :meth:`to_dict` (older reports get a status from ``drifted``)."""
        features = [FeatureDrift(**feature) for feature in data["features"]]
        features = [f if f.status else replace(f, status=DRIFT if f.drifted else NO_DRIFT) for f in features]
        return cls(
            features=features,
            drifted=list(data["drifted"]),
            dataset_drift=bool(data["dataset_drift"]),
            config=DriftConfig(**data.get("config", {})),
        )


@dataclass(frozen=True)
class Choice:
    """A feature's configured test: a registered name (``auto`` included), the test (None for auto), the
    config key that named it and the threshold override."""

    name: str
    test: DriftTest | None
    key: str
    threshold: float | None = None


def drift_report(
    reference: pl.DataFrame | ReferenceProfile,
    current: pl.DataFrame,
    *,
    numeric: list[str],
    categorical: list[str],
    config: DriftConfig = DriftConfig(),
) -> DriftReport:
    """Compare ``current`` with ``reference`` (a frame, or a :class:`ReferenceProfile` of one) feature by feature.

    A profile gives the same verdicts as the frame it was built from, faster. Raises DataError when a frame
    has no rows or lacks a feature (with a did-you-mean), or when a numeric feature is not numeric;
    ConfigError when a feature is listed twice or no feature is given, or when the config names a drift
    test that is not registered or does not take that kind of column.
    """
    _check_features(numeric, categorical)
    choices = chosen_tests(config, numeric, categorical)
    kinds: dict[str, Kind] = {**dict.fromkeys(numeric, "numeric"), **dict.fromkeys(categorical, "categorical")}
    if isinstance(reference, ReferenceProfile):
        ref_rows, ref_summaries = reference.n_rows, reference.summaries(kinds)
    else:
        _check_frame(reference, "reference", list(kinds))
        ref_rows, ref_summaries = reference.height, summarise_frame(reference, kinds)
    _check_frame(current, "current", list(kinds))
    cur_summaries = summarise_frame(current, kinds)
    if isinstance(reference, ReferenceProfile):
        cur_summaries = {name: reference.fold(name, summary) for name, summary in cur_summaries.items()}
    sides = (ref_rows, current.height)
    found = [
        _compare(name, kind, ref_summaries[name], cur_summaries[name], choices[name], sides, config)
        for name, kind in kinds.items()
    ]
    features = _decide(found, config)
    drifted = [feature.feature for feature in features if feature.drifted]
    return DriftReport(features, drifted, len(drifted) >= config.min_drifted_features, config)


def chosen_tests(config: DriftConfig, numeric: list[str], categorical: list[str]) -> dict[str, Choice]:
    """Each feature's configured drift test; ConfigError naming the key when one cannot be used.

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
    defaults = {
        "numeric": _choice(config.numeric_test, "monitor.drift.numeric_test", "numeric"),
        "categorical": _choice(config.categorical_test, "monitor.drift.categorical_test", "categorical"),
    }
    chosen = {}
    for feature, kind in kinds.items():
        spec = config.tests.get(feature)
        if spec is None:
            chosen[feature] = defaults[kind]
            continue
        key = f"monitor.drift.tests.{feature}" + ("" if spec.threshold is None else ".test")
        chosen[feature] = replace(_choice(spec.test, key, kind), threshold=spec.threshold)
    return chosen


def _choice(name: str, key: str, kind: Kind) -> Choice:
    return Choice(name, None if name == AUTO else _test(name, key, kind), key)


def _test(name: str, key: str, kind: Kind) -> DriftTest:
    if name not in DRIFT_TESTS:
        known = [AUTO, *DRIFT_TESTS.names()]
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
            hint=f"Choose a test for {kind} columns: {', '.join([AUTO, *fits])}.",
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
    """Whether one test result is drift, and why: the test's own rule.

    A p-value test (``p_value`` not None) drifts when ``p_value`` (already corrected, in a report) is below
    ``config.p_value``, or below ``threshold`` when one is given; a distance drifts when ``statistic``
    exceeds ``threshold`` (never without one). ``psi_value`` is only quoted: PSI no longer gatekeeps.
    """
    del psi_value
    if p_value is not None:
        alpha = config.p_value if threshold is None else threshold
        if p_value < alpha:
            return True, f"p-value {p_value:.2g} < {alpha:g}"
        return False, f"p-value {p_value:.2g} >= {alpha:g}"
    if threshold is None:
        return False, f"distance {statistic:.3g} (the test is a distance without a threshold)"
    if statistic > threshold:
        return True, f"distance {statistic:.3g} > {threshold:g}"
    return False, f"distance {statistic:.3g} <= {threshold:g}"


@dataclass(frozen=True)
class _Found:
    """A feature compared, before the correction across the report: the main test and the missing check."""

    feature: FeatureDrift
    main: _Result
    missing: _Result | None


@dataclass(frozen=True)
class _Result:
    """One test's outcome: its result (None: not enough data), the threshold it is judged by, and why not."""

    name: str
    result: DriftTestResult | None
    threshold: float | None
    short: str = ""


def _compare(
    name: str,
    kind: Kind,
    ref: Summary,
    cur: Summary,
    choice: Choice,
    sides: tuple[int, int],
    config: DriftConfig,
) -> _Found:
    psi_value, unseen = summary_psi(ref, cur, config.bins)
    main = _run(choice, ref, cur, config)
    missing = None
    if ref.n_null or cur.n_null:
        missing = _run(Choice(AUTO, None, ""), missing_summary(ref), missing_summary(cur), config)
    result = main.result
    feature = FeatureDrift(
        feature=name,
        kind=kind,
        psi=psi_value,
        test=main.name,
        statistic=0.0 if result is None else result.statistic,
        p_value=None if result is None else result.p_value,
        drifted=False,
        n_reference=sides[0],
        n_current=sides[1],
        reason=f"{unseen / sides[1]:.1%} of current rows in unseen categories" if unseen else "",
        threshold=main.threshold,
        missing_reference=ref.n_null / sides[0],
        missing_current=cur.n_null / sides[1],
    )
    return _Found(feature, main, missing)


def _run(choice: Choice, ref: Summary, cur: Summary, config: DriftConfig) -> _Result:
    test_name, test = choice.name, choice.test
    if test is None:
        test_name, ref, cur = auto_test(ref, cur)
        test = DRIFT_TESTS.get(test_name)
    smaller = min(ref.count, cur.count)
    if smaller < test.min_values:
        side = "reference" if ref.count == smaller else "current"
        short = f"{smaller} non-null {side} values; {test_name} needs {test.min_values}"
        return _Result(test_name, None, _threshold(choice, test_name, None, config), short)
    result = test.compare_summaries(ref, cur)
    threshold = _threshold(choice, test_name, result, config)
    return _Result(test_name, None if result.skipped else result, threshold, result.skipped)


def _threshold(choice: Choice, name: str, result: DriftTestResult | None, config: DriftConfig) -> float | None:
    if choice.threshold is not None:
        return choice.threshold
    if name == "psi":
        return config.psi_threshold
    if result is None:
        return None
    return config.p_value if result.p_value is not None else result.threshold


def _decide(found: list[_Found], config: DriftConfig) -> list[FeatureDrift]:
    """Correct the p-values across the report, then give each feature its status and reason."""
    results = [part for item in found for part in (item.main, item.missing) if part is not None]
    tested = [part for part in results if part.result is not None and part.result.p_value is not None]
    raw = np.array([part.result.p_value for part in tested if part.result and part.result.p_value is not None])
    adjusted = dict(zip(map(id, tested), correct(raw, config.correction).tolist(), strict=True))
    return [_verdict(item, adjusted, config) for item in found]


def correct(p_values: np.ndarray, method: str) -> np.ndarray:
    """p-values adjusted for multiple testing: Holm's step-down, Bonferroni, or none (as given).

    Holm controls the family-wise error rate like Bonferroni, with more power: the k-th smallest of m
    p-values is multiplied by (m - k + 1), then made monotone; capped at 1.
    """
    m = p_values.size
    if m == 0 or method == "none":
        return p_values.astype(np.float64)
    if method == "bonferroni":
        return np.asarray(np.minimum(1.0, p_values * m), dtype=np.float64)
    order = np.argsort(p_values, kind="stable")
    stepped = np.minimum(1.0, np.maximum.accumulate(p_values[order] * (m - np.arange(m))))
    adjusted = np.empty(m)
    adjusted[order] = stepped
    return adjusted


def _judge(part: _Result, adjusted: dict[int, float], config: DriftConfig) -> tuple[Status, str, float | None]:
    """One test's status, the words for it, and its corrected p-value."""
    result = part.result
    if result is None:
        return NOT_ENOUGH_DATA, f"not enough data ({part.short})", None
    corrected = adjusted.get(id(part))
    drifted, words = drift_verdict(
        0.0,
        corrected,
        config,
        statistic=result.statistic,
        threshold=part.threshold,
    )
    if corrected is not None and result.p_value is not None and corrected != result.p_value:
        words = f"{words} ({config.correction}-adjusted; raw {result.p_value:.2g})"
    return (DRIFT if drifted else NO_DRIFT), f"{part.name}: {words}", corrected


def _verdict(item: _Found, adjusted: dict[int, float], config: DriftConfig) -> FeatureDrift:
    status, words, corrected = _judge(item.main, adjusted, config)
    reasons = [words]
    missing_drifted = False
    if item.missing is not None:
        missing_status, missing_words, _ = _judge(item.missing, adjusted, config)
        missing_drifted = missing_status == DRIFT
        reasons.append(f"missing share {item.feature.missing_reference:.1%} -> {item.feature.missing_current:.1%}")
        reasons.append(f"missing share {missing_words}")
        status = DRIFT if missing_drifted else status
    if item.feature.reason:
        reasons.append(item.feature.reason)
    return replace(
        item.feature,
        status=status,
        drifted=status == DRIFT,
        p_value_adjusted=corrected,
        missing_drifted=missing_drifted,
        reason="; ".join(reasons),
    )


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
