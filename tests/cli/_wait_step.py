"""A step type for tests that stop a run mid-step: ``wait_test`` writes ``started``, then waits for ``release``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from loopline.core.step import STEP_TYPES, StepConfig, StepContext, StepType


class WaitConfig(StepConfig):
    started: str
    release: str
    value: int = 1


class Wait(StepType[WaitConfig]):
    type_name = "wait_test"
    Config = WaitConfig
    cacheable = False

    def run(self, config: WaitConfig, inputs: list[Any], ctx: StepContext) -> dict[str, Any]:
        Path(config.started).touch()
        deadline = time.monotonic() + 120
        while not Path(config.release).exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{config.release} never appeared")
            time.sleep(0.05)
        return {"out": config.value}


def register() -> None:
    """Make ``type: wait_test`` known in this process."""
    STEP_TYPES.register("wait_test", Wait(), replace=True)
