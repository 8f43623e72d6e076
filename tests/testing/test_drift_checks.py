"""check_drift_test: every registered drift test passes; drift tests that break a rule are caught, each by name."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from _broken_drift_tests import (
    AlwaysDrift,
    BadName,
    Blind,
    EmptyAccepted,
    FirstRows,
    Greedy,
    Improbable,
    IntegerStatistic,
    LoudSkip,
    Noisy,
    NoKinds,
    NullKeeping,
    Sound,
    Textual,
)

from loopline.monitor import DRIFT_TESTS, DriftTest
from loopline.testing import check_drift_test

Register = Callable[[DriftTest], DriftTest]


@pytest.fixture
def register(monkeypatch: pytest.MonkeyPatch) -> Iterator[Register]:
    """Registers drift tests for one test only (the registry has no removal; monkeypatch restores its table)."""
    DRIFT_TESTS.names()

    def add(test: DriftTest, name: str | None = None) -> DriftTest:
        monkeypatch.setitem(DRIFT_TESTS._items, name or test.name, test)
        return test

    yield add


@pytest.mark.parametrize("name", DRIFT_TESTS.names())
def test_every_registered_drift_test_passes(name: str) -> None:
    check_drift_test(name)
    check_drift_test(DRIFT_TESTS.get(name), rows=80)


def test_a_sound_user_drift_test_passes_by_object_and_by_name(register: Register) -> None:
    sound = register(Sound())
    check_drift_test(sound)
    check_drift_test("raw_wasserstein")


@pytest.mark.parametrize(
    ("cls", "message"),
    [
        (NoKinds, r"no_kinds: kinds is \(\); set the class attribute kinds to a non-empty tuple of 'numeric', "),
        (Greedy, r"greedy: min_values is 0; set the class attribute min_values to the number of non-null values"),
        (Textual, r"textual: kinds \['text'\] are not kinds of column"),
        (Noisy, r"noisy: the same numeric samples gave .*, then another result; compare must be deterministic"),
        (FirstRows, r"first_rows: shuffling the rows of numeric samples changed the result"),
        (AlwaysDrift, r"always_drift: identical samples of numeric values give distance 1\.0; identical samples"),
        (Blind, r"blind: a clear shift of numeric values gives distance .*; the distance must grow with the shift"),
        (
            NullKeeping,
            r"null_keeping: on identical samples with nulls of numeric values the statistic is nan; it must be finite",
        ),
        (EmptyAccepted, r"empty_accepted: an empty reference sample of numeric values gave .*must raise DataError"),
        (LoudSkip, r"loud_skip: on an all-null reference .* a skipped result has statistic 99\.0 and p-value None"),
        (Improbable, r"improbable: on two samples of numeric values the p-value is 1[0-9.]+; it must be a float in"),
        (
            IntegerStatistic,
            r"integer_statistic: on two samples .* the statistic is np\.int64\(1[0-9]+\) \(int64\); it must be a float",
        ),
    ],
)
def test_a_broken_drift_test_is_caught(register: Register, cls: type[DriftTest], message: str) -> None:
    broken = register(cls())
    with pytest.raises(AssertionError, match=message):
        check_drift_test(broken)


def test_the_name_must_be_a_registered_alias(register: Register) -> None:
    with pytest.raises(AssertionError, match=r"name 'Wasser-Stein' is not a stable alias; set the class attribute"):
        check_drift_test(BadName())
    with pytest.raises(AssertionError, match=r"raw_wasserstein: no drift test of that name is registered; register it"):
        check_drift_test(Sound())
    register(Blind(), "raw_wasserstein")
    with pytest.raises(AssertionError, match=r"another drift test \(Blind\) is registered under this name"):
        check_drift_test(Sound())
    register(Sound(), "alias")
    with pytest.raises(
        AssertionError, match=r"alias: the test registered under 'alias' calls itself 'raw_wasserstein'"
    ):
        check_drift_test("alias")
