"""Every built-in step type passes the conformance checks that plugin authors run."""

from __future__ import annotations

import pytest

from loopline.core import STEP_TYPES, StepConfig, StepType
from loopline.testing import check_step_type


@pytest.mark.parametrize("name", ["file", "sample", "join", "derive", "split", "train", "select"])
def test_built_in_step_types_conform(name: str) -> None:
    check_step_type(STEP_TYPES.get(name))


def test_a_broken_step_type_is_caught() -> None:
    class Loose(StepConfig):
        model_config = {"extra": "ignore", "frozen": True}

    class Broken(StepType):
        type_name = "broken"
        Config = Loose

    with pytest.raises(AssertionError, match="unknown config keys must be refused"):
        check_step_type(Broken())

    class NoOutputs(StepType):
        type_name = "no_outputs"
        outputs = ()

    with pytest.raises(AssertionError, match="at least one output"):
        check_step_type(NoOutputs())
