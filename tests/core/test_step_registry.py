"""Built-in step types register through the ``loopline.steps`` entry-point group, like a user's."""

from __future__ import annotations

import inspect
from importlib.metadata import entry_points

from loopline.core import STEP_TYPES, StepType
from loopline.core import step as step_module

BUILTINS = {"file", "sample", "ingest", "join", "asof_join", "union", "derive", "split", "train", "select"}


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
