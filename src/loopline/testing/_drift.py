"""The drift-test contract, as checks (see ``loopline.monitor._drift_tests``).

:func:`check_drift_test` runs a registered drift test on generated samples of each kind of column it
takes; the first broken rule raises AssertionError saying what broke and how to fix it.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import polars as pl

from loopline.core.errors import DataError
from loopline.monitor import DRIFT_TESTS, DriftTest, DriftTestResult
from loopline.monitor._drift_tests import KINDS

NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
"""A drift test's name: a stable lowercase alias, as config keys and stored reports write it."""

ALPHA = 0.01
"""A p-value below this is drift (the default ``monitor.drift.p_value``)."""

SAME_P_VALUE = 0.99
"""Identical samples must give at least this p-value."""

SAME_DISTANCE = 1e-9
"""Identical samples must give at most this distance."""

ROWS = 500
_CATEGORIES = ["red", "green", "blue", "grey"]
_MIX, _SHIFTED_MIX = (0.4, 0.3, 0.2, 0.1), (0.1, 0.2, 0.3, 0.4)
_REL_TOL = 1e-9


def check_drift_test(test: DriftTest | str, *, rows: int = ROWS) -> None:
    """Raise AssertionError naming the first broken rule of the drift-test contract.

    ``test`` must be registered in :data:`loopline.monitor.DRIFT_TESTS` under its ``name`` (by
    ``DRIFT_TESTS.register`` or the ``loopline.drift_tests`` entry point). For each kind of column it
    takes, on generated samples of ``rows`` rows shaped as the drift report hands them over (numeric:
    Float64, NaN as null; categorical: String):

    - its name is a stable lowercase alias and its kinds a non-empty subset of numeric/categorical;
    - ``min_values`` (values each side needs for a verdict) is an int of at least 1;
    - results are DriftTestResult with a finite float statistic, a p-value that is None or in [0, 1]
      and a threshold that is None or finite; a skipped result has statistic 0 and p-value 1 or None;
    - the same inputs give an equal result, and shuffling the rows changes nothing (up to rounding);
    - identical samples show no drift (p-value >= 0.99, or distance <= 1e-9), with or without nulls;
    - a clear shift of the kind is found: p-value < 0.01, or a distance above the test's threshold and
      at least twice the distance between two samples of one distribution;
    - nulls never raise: a side with nulls, or only nulls, gives a valid result, and two all-null sides
      show no drift;
    - a side with no rows raises DataError.
    """
    checked = _registered(test)
    _check_min_values(checked)
    for kind in _kinds(checked):
        samples = _Samples(kind, rows)
        run = _Runner(checked, kind)
        first = run(samples.reference, samples.shifted)
        _require(
            run(samples.reference, samples.shifted) == first,
            f"{checked.name}: the same {kind} samples gave {first!r}, then another result; compare must be "
            "deterministic (draw no random numbers, or seed them from the data)",
        )
        _check_row_order(run, samples, first)
        _check_no_drift(run, samples.reference, samples.reference.clone(), "identical samples")
        _check_no_drift(run, samples.with_nulls, samples.with_nulls.clone(), "identical samples with nulls")
        _check_shift(run, samples, first)
        _check_nulls(run, samples)
        _check_empty(run, samples)


def _registered(test: DriftTest | str) -> DriftTest:
    name = test if isinstance(test, str) else getattr(test, "name", None)
    how = "register it with DRIFT_TESTS.register(test.name, test) or the 'loopline.drift_tests' entry point"
    if not isinstance(name, str) or NAME.match(name) is None:
        raise AssertionError(
            f"name {name!r} is not a stable alias; set the class attribute name to lowercase letters, digits and "
            "underscores, starting with a letter (config keys and stored reports write it)"
        )
    _require(name in DRIFT_TESTS, f"{name}: no drift test of that name is registered; {how}")
    registered = DRIFT_TESTS.get(name)
    _require(
        isinstance(test, str) or type(registered) is type(test),
        f"{name}: another drift test ({type(registered).__name__}) is registered under this name; {how} "
        "(replace=True to override)",
    )
    _require(
        getattr(registered, "name", None) == name,
        f"{name}: the test registered under {name!r} calls itself {getattr(registered, 'name', None)!r}; "
        "register each test under its own name",
    )
    return registered


def _check_min_values(test: DriftTest) -> None:
    found = getattr(test, "min_values", 1)
    _require(
        isinstance(found, int) and not isinstance(found, bool) and found >= 1,
        f"{test.name}: min_values is {found!r}; set the class attribute min_values to the number of non-null "
        "values each side needs for a verdict (an int of at least 1)",
    )


def _kinds(test: DriftTest) -> tuple[str, ...]:
    kinds = getattr(test, "kinds", None)
    fix = f"set the class attribute kinds to a non-empty tuple of {', '.join(map(repr, KINDS))}"
    if not isinstance(kinds, tuple) or not kinds:
        raise AssertionError(f"{test.name}: kinds is {kinds!r}; {fix}")
    unknown = [kind for kind in kinds if kind not in KINDS]
    _require(not unknown, f"{test.name}: kinds {unknown!r} are not kinds of column; {fix}")
    _require(len(set(kinds)) == len(kinds), f"{test.name}: kinds {kinds!r} repeats a kind; {fix}")
    return kinds


class _Samples:
    """Generated samples of one kind: a reference, another draw of it, a clear shift, and null variants."""

    def __init__(self, kind: str, rows: int) -> None:
        rng = np.random.default_rng(20240611)
        if kind == "numeric":
            self.reference = pl.Series("x", rng.normal(0.0, 1.0, rows))
            self.resample = pl.Series("x", rng.normal(0.0, 1.0, rows))
            self.shifted = pl.Series("x", rng.normal(1.5, 1.0, rows))
        else:
            self.reference = pl.Series("x", rng.choice(_CATEGORIES, rows, p=_MIX).tolist(), dtype=pl.String)
            self.resample = pl.Series("x", rng.choice(_CATEGORIES, rows, p=_MIX).tolist(), dtype=pl.String)
            self.shifted = pl.Series("x", rng.choice(_CATEGORIES, rows, p=_SHIFTED_MIX).tolist(), dtype=pl.String)
        every_fifth = pl.Series(np.arange(rows) % 5 == 0)
        self.with_nulls = _nulls_where(self.reference, every_fifth)
        self.shifted_with_nulls = _nulls_where(self.shifted, every_fifth)
        self.all_null = pl.Series("x", [None] * rows, dtype=self.reference.dtype)
        self.empty = self.reference.head(0)
        self.seed = int(rng.integers(2**31))


def _nulls_where(series: pl.Series, mask: pl.Series) -> pl.Series:
    return series.zip_with(~mask, pl.Series(series.name, [None] * series.len(), dtype=series.dtype))


class _Runner:
    """Calls ``compare`` and checks the result's fields; failures name the test, the kind and the samples."""

    def __init__(self, test: DriftTest, kind: str) -> None:
        self.test, self.kind, self.name = test, kind, test.name

    def __call__(self, reference: pl.Series, current: pl.Series, what: str = "two samples") -> DriftTestResult:
        try:
            result = self.test.compare(reference, current)
        except Exception as exc:
            raise AssertionError(
                f"{self.name}: compare failed on {what} of {self.kind} values ({type(exc).__name__}: {exc}); "
                "it must take any sample the drift report passes (nulls included) and raise only DataError "
                "for a side without rows"
            ) from exc
        self.check_fields(result, what)
        return result

    def check_fields(self, result: Any, what: str) -> None:
        where = f"{self.name}: on {what} of {self.kind} values"
        _require(
            isinstance(result, DriftTestResult),
            f"{where} compare returned {type(result).__name__}; return a loopline.monitor.DriftTestResult",
        )
        _require(
            isinstance(result.statistic, float),
            f"{where} the statistic is {result.statistic!r} ({type(result.statistic).__name__}); it must be a "
            "float (convert it with float())",
        )
        _require(
            math.isfinite(result.statistic),
            f"{where} the statistic is {result.statistic!r}; it must be finite (drop nulls and NaN before "
            "computing it)",
        )
        p = result.p_value
        _require(
            p is None or (isinstance(p, float) and 0.0 <= p <= 1.0),
            f"{where} the p-value is {p!r}; it must be a float in [0, 1], or None for a distance",
        )
        t = result.threshold
        _require(
            t is None or (isinstance(t, float) and math.isfinite(t)),
            f"{where} the threshold is {t!r}; it must be a finite float or None",
        )
        _require(isinstance(result.skipped, str), f"{where} skipped is {result.skipped!r}; it must be a string")
        _require(
            not result.skipped or (result.statistic == 0.0 and p in (1.0, None)),
            f"{where} a skipped result has statistic {result.statistic!r} and p-value {p!r}; a test that cannot "
            "run must return statistic 0.0 and p-value 1.0 (None for a distance) so that it never flags drift",
        )


def _check_row_order(run: _Runner, samples: _Samples, first: DriftTestResult) -> None:
    rng = np.random.default_rng(samples.seed)
    reference = samples.reference.gather(rng.permutation(samples.reference.len()))
    current = samples.shifted.gather(rng.permutation(samples.shifted.len()))
    shuffled = run(reference, current, "shuffled samples")
    same = (
        _close(shuffled.statistic, first.statistic)
        and _close(shuffled.p_value, first.p_value)
        and _close(shuffled.threshold, first.threshold)
        and bool(shuffled.skipped) == bool(first.skipped)
    )
    _require(
        same,
        f"{run.name}: shuffling the rows of {run.kind} samples changed the result from {first!r} to "
        f"{shuffled!r}; compare must depend on the values, not on their order",
    )


def _check_no_drift(run: _Runner, reference: pl.Series, current: pl.Series, what: str) -> None:
    result = run(reference, current, what)
    if result.p_value is not None:
        _require(
            result.p_value >= SAME_P_VALUE,
            f"{run.name}: {what} of {run.kind} values give p-value {result.p_value!r}; identical samples must "
            f"give a p-value of at least {SAME_P_VALUE} (no drift)",
        )
        return
    _require(
        abs(result.statistic) <= SAME_DISTANCE,
        f"{run.name}: {what} of {run.kind} values give distance {result.statistic!r}; identical samples must "
        f"give a distance of at most {SAME_DISTANCE:g} (no drift)",
    )


def _check_shift(run: _Runner, samples: _Samples, shifted: DriftTestResult) -> None:
    clear = f"a clear shift of {run.kind} values"
    if shifted.p_value is not None:
        _require(
            shifted.p_value < ALPHA,
            f"{run.name}: {clear} gives p-value {shifted.p_value!r}; it must be found (p-value < {ALPHA:g})",
        )
        return
    same = run(samples.reference, samples.resample, "two samples of one distribution")
    _require(
        shifted.statistic > 2 * same.statistic and shifted.statistic > 0,
        f"{run.name}: {clear} gives distance {shifted.statistic!r}, two samples of one distribution "
        f"{same.statistic!r}; the distance must grow with the shift (at least twice as large)",
    )
    if shifted.threshold is not None:
        _require(
            shifted.statistic > shifted.threshold,
            f"{run.name}: {clear} gives distance {shifted.statistic!r}, not above the test's threshold "
            f"{shifted.threshold!r}; lower the threshold, or the shift is not found",
        )


def _check_nulls(run: _Runner, samples: _Samples) -> None:
    run(samples.with_nulls, samples.shifted_with_nulls, "samples with nulls")
    run(samples.all_null, samples.reference, "an all-null reference")
    run(samples.reference, samples.all_null, "an all-null current sample")
    _check_no_drift(run, samples.all_null, samples.all_null.clone(), "two all-null samples")


def _check_empty(run: _Runner, samples: _Samples) -> None:
    for reference, current, side in (
        (samples.empty, samples.reference, "reference"),
        (samples.reference, samples.empty, "current"),
    ):
        try:
            result = run.test.compare(reference, current)
        except DataError:
            continue
        except Exception as exc:
            raise AssertionError(
                f"{run.name}: an empty {side} sample of {run.kind} values raised {type(exc).__name__} ({exc}); "
                "it must raise loopline's DataError (see require_rows in loopline.monitor)"
            ) from exc
        raise AssertionError(
            f"{run.name}: an empty {side} sample of {run.kind} values gave {result!r}; a side without rows "
            "must raise DataError (call require_rows first)"
        )


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=_REL_TOL, abs_tol=1e-12)


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)
