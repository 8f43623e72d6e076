"""Per-feature data drift between a reference (the training frame, or its stored :class:`ReferenceProfile`)
and a current frame (recent inputs).

Each feature is compared by the drift test its config chooses from
:data:`~loopline.monitor._drift_tests.DRIFT_TESTS` (``auto`` by default, see :mod:`loopline.monitor._auto`)
and gets a status: ``"drift"``, ``"no drift"`` or ``"not enough data"`` (see :mod:`loopline.monitor._verdicts`).
A change in the missing share is checked the same way (as a two-category column: missing, present). PSI is
computed for every feature and reported; it decides only as the chosen test.
"""

from __future__ import annotations

from dataclasses import replace

import polars as pl

from loopline.core.config import AUTO, DriftConfig
from loopline.core.errors import ConfigError, DataError, did_you_mean
from loopline.monitor._drift_tests import DRIFT_TESTS, DriftTest, Kind
from loopline.monitor._multivariate import multivariate_drift
from loopline.monitor._profile import ReferenceProfile, summarise_frame
from loopline.monitor._psi import summary_psi
from loopline.monitor._report import DriftReport, FeatureDrift
from loopline.monitor._summary import Summary, missing_summary
from loopline.monitor._verdicts import AUTO_CHOICE, Choice, Outcome, drift_verdict, run_test, verdict, with_corrected

__all__ = ["MIN_ROWS", "Choice", "DriftReport", "FeatureDrift", "chosen_tests", "drift_report", "drift_verdict"]

MIN_ROWS = 1
"""Rows each frame needs for a drift report (a retrain decision needs more, see ``decide_retrain``)."""


def drift_report(
    reference: pl.DataFrame | ReferenceProfile,
    current: pl.DataFrame,
    *,
    numeric: list[str],
    categorical: list[str],
    config: DriftConfig = DriftConfig(),
    reference_rows: pl.DataFrame | None = None,
) -> DriftReport:
    """Compare ``current`` with ``reference`` (a frame, or a :class:`ReferenceProfile` of one) feature by feature.

    A profile gives the same verdicts as the frame it was built from, faster. With
    ``config.multivariate.enabled``, a domain classifier also compares the rows (``reference_rows``, else a
    ``reference`` frame; "not available" with only a profile), see :func:`multivariate_drift`. Raises
    DataError when a frame has no rows or lacks a feature (with a did-you-mean), or when a numeric feature is
    not numeric; ConfigError when a feature is listed twice or no feature is given, or when the config names a drift
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
    joint = None
    if config.multivariate.enabled:
        rows = reference_rows if reference_rows is not None or isinstance(reference, ReferenceProfile) else reference
        joint = multivariate_drift(rows, current, numeric=numeric, categorical=categorical, config=config)
    dataset_drift = len(drifted) >= config.min_drifted_features or (joint is not None and joint.drifted)
    return DriftReport(features, drifted, dataset_drift, config, joint)


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


def _compare(
    name: str,
    kind: Kind,
    ref: Summary,
    cur: Summary,
    choice: Choice,
    sides: tuple[int, int],
    config: DriftConfig,
) -> tuple[FeatureDrift, Outcome, Outcome | None]:
    """One feature before the correction across the report: its record so far, its test, its missing check."""
    psi_value, unseen = summary_psi(ref, cur, config.bins)
    main = run_test(choice, ref, cur, config)
    missing = None
    if ref.n_null or cur.n_null:
        missing = run_test(AUTO_CHOICE, missing_summary(ref), missing_summary(cur), config)
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
    return feature, main, missing


def _decide(found: list[tuple[FeatureDrift, Outcome, Outcome | None]], config: DriftConfig) -> list[FeatureDrift]:
    """Correct every p-value of the report together, then give each feature its status and reason."""
    outcomes = [outcome for _, main, missing in found for outcome in (main, missing) if outcome is not None]
    corrected = iter(with_corrected(outcomes, config.correction))
    features = []
    for feature, _, missing in found:
        main = next(corrected)
        features.append(verdict(feature, main, None if missing is None else next(corrected), config))
    return features


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
