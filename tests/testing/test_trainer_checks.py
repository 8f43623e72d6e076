"""check_trainer: every built-in estimator and task passes; trainers that break a rule are caught, each by name."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from _broken_trainers import (
    Forgetful,
    Helper,
    Loose,
    Rewriting,
    Scrambled,
    SeedDropping,
    Smuggler,
    Sound,
    Unnormalised,
    Unseeded,
    spec,
)

from loopline.testing import check_trainer
from loopline.train import ESTIMATORS, EstimatorSpec

Register = Callable[[EstimatorSpec], EstimatorSpec]


@pytest.fixture
def register(monkeypatch: pytest.MonkeyPatch) -> Iterator[Register]:
    """Registers specs for one test only (the registry has no removal; monkeypatch restores its table)."""
    ESTIMATORS.names()

    def add(item: EstimatorSpec) -> EstimatorSpec:
        monkeypatch.setitem(ESTIMATORS._items, item.name, item)
        return item

    yield add


def _all_pairs() -> list[tuple[str, str]]:
    return [(name, task) for name in ESTIMATORS.names() for task in ESTIMATORS.get(name).tasks]


@pytest.mark.parametrize(("name", "task"), _all_pairs())
def test_every_registered_estimator_passes_for_every_task(name: str, task: str) -> None:
    check_trainer(name, task)


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_a_sound_user_trainer_passes_by_spec_and_by_alias(register: Register, task: str) -> None:
    sound = register(spec(Sound, defaults={"temperature": 2.0}))
    check_trainer(sound, task)
    check_trainer(sound.name, task, params={"temperature": 0.5}, seed=11)
    declared = register(spec(Smuggler, "declared_smuggler", trusted_types=("_broken_trainers:Helper",)))
    check_trainer(declared, task)
    assert Helper.__module__ == "_broken_trainers"


@pytest.mark.parametrize(
    ("cls", "message"),
    [
        (Unnormalised, r"predict_proba rows must sum to 1 \(row \d+ sums to 0\.5\); normalise the probabilities"),
        (Unseeded, r"the same seed gave different results .*draw all its randomness from its seed parameter"),
        (Scrambled, r"rows of class 'c' get their highest probability in the column of 'a'; classes_ must list"),
        (Smuggler, r"bundle does not load back: .*'_broken_trainers\.Helper'.*declare every type .*trusted_types"),
        (Forgetful, r"predict_table changed after the bundle was stored and loaded"),
        (Rewriting, r"default temperature=1\.0 reads back as 2\.0 from get_params\(\); the constructor must store"),
        (Loose, r"unknown parameter 'loopline_no_such_parameter' was accepted; it must raise ConfigError"),
    ],
)
def test_a_broken_trainer_is_caught(register: Register, cls: type, message: str) -> None:
    broken = register(spec(cls, defaults={"temperature": 1.0}))
    with pytest.raises(AssertionError, match=message):
        check_trainer(broken, "multiclass")


def test_the_seed_must_reach_the_estimator(register: Register) -> None:
    dropped = register(spec(SeedDropping))
    with pytest.raises(AssertionError, match=r"seed does not reach the estimator \(get_params\(\)\['random_state'\]"):
        check_trainer(dropped, "binary")
    misnamed = register(spec(Sound, "misnamed_seed", seed_param="seed"))
    with pytest.raises(AssertionError, match=r"building it failed: estimator 'misnamed_seed' has no parameter 'seed'"):
        check_trainer(misnamed, "binary")


def test_only_registered_specs_and_their_tasks_are_checked(register: Register) -> None:
    with pytest.raises(AssertionError, match="no estimator of that name is registered; register it with"):
        check_trainer(spec(Sound, "never_registered"), "binary")
    register(spec(Sound, "twice"))
    with pytest.raises(AssertionError, match="another spec is registered under this name"):
        check_trainer(spec(Sound, "twice", defaults={"temperature": 3.0}), "binary")
    with pytest.raises(AssertionError, match=r"does not support task 'regression' \(its tasks: binary, multiclass\)"):
        check_trainer("twice", "regression")
