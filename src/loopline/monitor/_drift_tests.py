"""The drift-test contract: one small object per statistic, found by name in :data:`DRIFT_TESTS`.

    class MyTest(DriftTest):
        name = "mytest"                       # the stable alias config keys and reports use
        kinds = ("numeric",)                  # the kinds of column it takes
        def compare(self, reference, current):   # two polars Series -> DriftTestResult
            ...

Guarantees the drift report relies on (and ``loopline.testing.check_drift_test`` checks):

- ``name`` is a lowercase alias (``[a-z][a-z0-9_]*``) and the test is registered under it; ``kinds`` is a
  non-empty subset of ``("numeric", "categorical")``.
- ``compare`` receives what the report hands it: a numeric column as Float64 with NaN turned into null, a
  categorical column as String. It is pure and deterministic (equal inputs give an equal result, the test
  keeps no state: one instance serves every feature), and the order of the rows does not matter (up to
  floating-point rounding).
- Nulls never raise. A test either compares the non-null values only (every built-in but ``psi``: a change
  in the missing rate is the report's missing-share check) or counts null as a value of its own (``psi``);
  its docstring says which. When a side has no value the test can use, the result is *skipped*: statistic 0.0, p-value
  1.0 (None for a distance) and ``skipped`` saying why, so that it never flags drift on its own.
- A side with no rows at all is a :class:`~loopline.core.errors.DataError` (see :func:`require_rows`).
- ``min_values`` (default 1) is the number of non-null values each side needs before the report asks the
  test at all: below it the feature says "not enough data", never "drift". A result that is *skipped*
  (e.g. chi-square with too few expected counts per category) says "not enough data" too.
- A p-value test reports drift when its p-value is below ``monitor.drift.p_value`` (after the report's
  multiple-testing correction); a distance reports drift when it exceeds its ``threshold``.
- Identical samples show no drift (p-value 1, or distance 0); the statistic is finite, the p-value is None
  (a distance-only test) or in [0, 1].

Built-ins (``ks``, ``chi2``, ``ztest``, ``wasserstein``, ``jensenshannon``, ``hellinger``, ``psi``) are entry
points of the ``loopline.drift_tests`` group in loopline's own ``pyproject.toml``, exactly as a user's package
declares its own; ``DRIFT_TESTS.register(name, test)`` registers one in code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import polars as pl

from loopline.core.errors import DataError
from loopline.core.registry import Registry
from loopline.monitor._summary import (
    Summary,
    as_categorical,
    as_numeric,
    categorical_summary,
    category_counts,
    is_numeric_dtype,
    numeric_summary,
)

__all__ = [
    "DRIFT_TESTS",
    "KINDS",
    "DriftTest",
    "DriftTestResult",
    "Kind",
    "SummaryTest",
    "as_categorical",
    "as_numeric",
    "category_counts",
    "require_rows",
    "skipped_result",
]

Kind = Literal["numeric", "categorical"]
KINDS: tuple[Kind, ...] = ("numeric", "categorical")
"""The kinds of column a drift test may take."""


@dataclass(frozen=True)
class DriftTestResult:
    """What one comparison found.

    ``statistic``: the test statistic or the distance. ``p_value``: the probability of a statistic at least
    this large if both samples came from one distribution; None for a distance-only test. ``threshold``: for
    a distance-only test, the statistic above which it calls drift (its default; a config may override it;
    None: the distance never calls drift on its own). ``skipped``: why the test could not run, or empty.
    """

    __test__ = False  # not a pytest class

    statistic: float
    p_value: float | None = None
    threshold: float | None = None
    skipped: str = ""


class DriftTest:
    """Base class of drift tests: set ``name``, ``kinds`` and ``compare`` (see the module docstring)."""

    __test__ = False  # not a pytest class

    name: ClassVar[str]
    kinds: ClassVar[tuple[Kind, ...]]
    min_values: ClassVar[int] = 1
    """Non-null values each side needs for a verdict; the report says "not enough data" below it."""

    def compare(self, reference: pl.Series, current: pl.Series) -> DriftTestResult:
        """Compare the current sample of one column with its reference sample."""
        raise NotImplementedError

    def compare_summaries(self, reference: Summary, current: Summary) -> DriftTestResult:
        """Compare two column summaries (what a report against a stored profile hands over).

        The default rebuilds the columns and calls :meth:`compare`; the built-ins compare the summaries
        directly (and their ``compare`` summarises first), so frame and profile give the same numbers.
        """
        name = "value"
        return self.compare(reference.to_series(name), current.to_series(name))


DRIFT_TESTS: Registry[DriftTest] = Registry("drift test", "loopline.drift_tests", instantiate=True)
"""Every drift test by name. An entry point naming a class registers an instance made without arguments."""


def skipped_result(reason: str, *, p_value: bool = True) -> DriftTestResult:
    """A test that could not run: statistic 0.0, p-value 1.0 (None for a distance) and the reason."""
    return DriftTestResult(statistic=0.0, p_value=1.0 if p_value else None, skipped=reason)


def require_rows(test: str, reference: pl.Series, current: pl.Series) -> None:
    """Raise DataError when a side has no rows (nulls count as rows)."""
    for series, side in ((reference, "reference"), (current, "current")):
        if series.len() == 0:
            raise DataError(
                f"drift test {test!r}: the {side} sample of {series.name!r} has no rows.",
                column=series.name,
                hint="Compare samples with at least one row each (a row may be null).",
            )


class SummaryTest(DriftTest):
    """Base of the built-ins: ``compare`` summarises both columns and calls :meth:`compare_summaries`.

    A test of one kind reads both columns as that kind (``as_numeric`` raises DataError for text); a test of
    both kinds reads them by the reference's dtype.
    """

    def compare(self, reference: pl.Series, current: pl.Series) -> DriftTestResult:
        require_rows(self.name, reference, current)
        numeric = self.kinds == ("numeric",) or (self.kinds != ("categorical",) and is_numeric_dtype(reference))
        read = numeric_summary if numeric else categorical_summary
        return self.compare_summaries(read(reference), read(current))

    def compare_summaries(self, reference: Summary, current: Summary) -> DriftTestResult:
        raise NotImplementedError
