"""Built-in plugins (step types, sources, transforms, drift tests, wire protocols) register through their
entry-point groups, exactly like a user's package."""

from __future__ import annotations

import inspect
from importlib.metadata import entry_points
from typing import Any

import pytest

from loopline.core import STEP_TYPES, StepType
from loopline.core import step as step_module
from loopline.core.registry import Registry

BUILTINS = {"file", "sample", "ingest", "join", "asof_join", "union", "derive", "split", "train", "select", "tune"}


def test_every_builtin_is_an_entry_point_of_the_public_group() -> None:
    declared = {entry.name: entry.value for entry in entry_points(group="loopline.steps")}
    assert set(declared) >= BUILTINS
    for name in BUILTINS:
        assert declared[name].startswith("loopline.run.steps.")
        registered = STEP_TYPES.get(name)
        assert isinstance(registered, StepType)
        assert registered.type_name == name  # the entry-point name is the YAML type name


def test_the_core_names_no_orchestration_module() -> None:
    assert "loopline.run" not in inspect.getsource(step_module)


def test_step_types_are_generic_over_their_config() -> None:
    for name in BUILTINS:
        step_type = STEP_TYPES.get(name)
        (base,) = type(step_type).__orig_bases__  # type: ignore[attr-defined]
        assert base.__args__ == (step_type.Config,), name


def registries() -> dict[str, Registry[Any]]:
    from loopline.ingest import SOURCES
    from loopline.monitor import DRIFT_TESTS
    from loopline.prep import TRANSFORMS
    from loopline.serve.protocols import PROTOCOLS

    return {
        "loopline.steps": STEP_TYPES,
        "loopline.sources": SOURCES,
        "loopline.transforms": TRANSFORMS,
        "loopline.drift_tests": DRIFT_TESTS,
        "loopline.protocols": PROTOCOLS,
    }


@pytest.mark.parametrize("group", sorted(registries()))
def test_the_builtins_of_each_plugin_kind_are_exactly_loopline_s_own_entry_points(group: str) -> None:
    registry = registries()[group]
    assert registry.group == group
    assert registry._builtin_modules == ()  # no module named by string: the entry points are the only list
    own = {
        entry.name for entry in entry_points(group=group) if entry.dist is not None and entry.dist.name == "loopline"
    }
    assert own, group
    assert set(registry.names()) >= own
    for name in own:
        assert registry.get(name) is registry.get(name)  # loaded once
