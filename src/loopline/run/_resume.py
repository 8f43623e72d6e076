"""What resuming a run with a (possibly edited) pipeline means.

The rule: a resumed run keeps what succeeded and runs the rest with the pipeline as it is now. A step that did
not succeed (failed, skipped, never reached) runs its current config, and is reported as changed if its config
differs from the run's. A step that succeeded must be exactly as it ran (type, inputs, resolved config):
otherwise the run would mix two pipelines, so resuming is refused and a new run (whose unchanged steps come
from the cache) is the way to go.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loopline.core.errors import ConfigError

if TYPE_CHECKING:
    from loopline.core.pipeline import BoundStep, Pipeline
    from loopline.store import RunRecord

DONE = ("succeeded", "cached", "reused")


@dataclass(frozen=True)
class ResumePlan:
    """``done``: the outputs of the steps the resumed run reuses; ``changed``: the steps that will run a config
    other than the one the run had (or that it did not have)."""

    done: dict[str, dict[str, dict[str, str]]]
    changed: tuple[str, ...]
    attempt: int


def plan_resume(record: RunRecord, pipeline: Pipeline, bound: dict[str, BoundStep]) -> ResumePlan:
    """Check ``pipeline`` against the run ``record`` and say what the resumed run reuses and what changed."""
    if record.pipeline != pipeline.name:
        raise ConfigError(
            f"run {record.run_id} is a run of pipeline {record.pipeline!r}, not {pipeline.name!r}.",
            file=pipeline.source,
            hint=f"Name that pipeline's file, or run {pipeline.name!r} anew without --resume.",
        )
    old_steps: dict[str, Any] = record.spec.get("steps", {}) if isinstance(record.spec, dict) else {}
    new_steps = pipeline.to_dict()["steps"]
    ran = {s.step: s for s in record.steps}
    done = {name: s.outputs for name, s in ran.items() if s.status in DONE and name in bound}
    refused = {name: _differences(ran[name], old_steps.get(name), new_steps[name], bound[name]) for name in done}
    refused = {name: diff for name, diff in refused.items() if diff}
    if refused:
        raise _refusal(record, pipeline, refused)
    changed = tuple(
        name
        for name in bound
        if name not in done
        and (old_steps.get(name) != new_steps[name] or (name in ran and ran[name].config != _resolved(bound[name])))
    )
    attempt = 1 + max((s.attempt for s in record.steps), default=0)
    return ResumePlan(done, changed, attempt)


def _resolved(bound: BoundStep) -> dict[str, Any]:
    config: dict[str, Any] = bound.config.model_dump(mode="json")
    return config


def _differences(ran: Any, old: Any, new: dict[str, Any], bound: BoundStep) -> list[str]:
    """What differs between a succeeded step as it ran and as it is now: ``type``, ``inputs``, config keys."""
    out = []
    if ran.type != bound.spec.type:
        out.append("type")
    if isinstance(old, dict) and list(old.get("inputs", [])) != list(new.get("inputs", [])):
        out.append("inputs")
    if ran.type == bound.spec.type:
        now = _resolved(bound)
        out += sorted(k for k in set(ran.config) | set(now) if ran.config.get(k) != now.get(k))
    return out


def _refusal(record: RunRecord, pipeline: Pipeline, refused: dict[str, list[str]]) -> ConfigError:
    steps = "; ".join(f"{name!r} ({', '.join(diff)})" for name, diff in refused.items())
    where = f"loopline run {pipeline.source}" if pipeline.source and not pipeline.source.startswith("<") else None
    return ConfigError(
        f"cannot resume run {record.run_id}: step(s) that already succeeded in it changed since: {steps}. "
        "A resumed run keeps what succeeded, so it would mix two versions of the pipeline.",
        file=pipeline.source if where else None,
        hint=f"Start a new run instead (`{where or 'loopline run PIPELINE'}`; unchanged steps come from the "
        "cache), or undo the change to resume.",
    )
