"""The dashboard's actions: promote, roll back, request a retrain, acknowledge an alert.

Each goes through the same library call as its CLI command, and each is recorded with the actor ``ui:token:NAME``
(the model audit trail, the loop's events, the alert's acknowledgement). A promotion or rollback to a version that
cannot be served is refused before the store changes, as over the service's admin endpoints.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loopline.core.config import MODEL_NAME_PATTERN
from loopline.ui._page import UIError

if TYPE_CHECKING:
    from loopline.store import Store

MAX_REASON = 500


@dataclass(frozen=True)
class Done:
    """An action's outcome: a sentence for the person, the JSON answer, and the page to show next."""

    message: str
    result: dict[str, Any]
    next_path: str


Action = Callable[["Store", Mapping[str, Any], str], Done]


def promote(store: Store, fields: Mapping[str, Any], actor: str) -> Done:
    """Make ``version`` of ``model`` the production version."""
    from loopline.bundle import check_servable

    name, version, reason = _model(fields), _version(fields), _reason(fields)
    changed = store.models.with_check(check_servable).promote(name, version, reason, actor=actor)
    result = {"model": name, "production": changed.version}
    return Done(f"{name} version {changed.version} is now in production.", result, f"/models/{name}")


def rollback(store: Store, fields: Mapping[str, Any], actor: str) -> Done:
    """Put the previous production version of ``model`` back."""
    from loopline.bundle import check_servable

    name, reason = _model(fields), _reason(fields)
    changed = store.models.with_check(check_servable).rollback(name, reason, actor=actor)
    result = {"model": name, "production": changed.version}
    return Done(f"{name} rolled back to version {changed.version}.", result, f"/models/{name}")


def request_retrain(store: Store, fields: Mapping[str, Any], actor: str) -> Done:
    """Ask the loop of ``pipeline`` to retrain at its next tick (past its triggers and cooldown)."""
    from loopline.store.loop import LoopStore

    pipeline = _text(fields, "pipeline", 200)
    reason = _reason(fields) or "requested from the dashboard"
    event = LoopStore(store.engine).record(pipeline, "request", f"{reason} (by {actor})", details={"actor": actor})
    result = {"pipeline": pipeline, "event": event.id, "at": event.at.isoformat()}
    return Done(f"retrain of {pipeline} requested: its loop retrains at its next tick.", result, "/loop")


def acknowledge(store: Store, fields: Mapping[str, Any], actor: str) -> Done:
    """Mark an alert as seen."""
    raw = fields.get("alert")
    alert_id = _positive(raw, "alert")
    alert = store.alerts.acknowledge(alert_id, actor=actor)
    return Done(f"alert {alert.id} acknowledged.", {"alert": alert.id, "acknowledged": True}, "/")


ACTIONS: dict[str, Action] = {
    "promote": promote,
    "rollback": rollback,
    "retrain": request_retrain,
    "acknowledge": acknowledge,
}


def _text(fields: Mapping[str, Any], key: str, limit: int) -> str:
    value = fields.get(key)
    if not isinstance(value, str) or not value.strip():
        raise UIError(422, f"the field {key!r} is missing.", hint=f"Send {key} with the action.")
    if len(value) > limit:
        raise UIError(422, f"the field {key!r} is longer than {limit} characters.")
    return value.strip()


def _model(fields: Mapping[str, Any]) -> str:
    import re

    name = _text(fields, "model", 64)
    if not re.fullmatch(MODEL_NAME_PATTERN, name):
        raise UIError(
            422, f"the field 'model' is not a model name: {name!r}.", hint=f"Model names match {MODEL_NAME_PATTERN}."
        )
    return name


def _positive(raw: Any, key: str) -> int:
    try:
        number = int(raw)
    except (TypeError, ValueError):
        raise UIError(422, f"the field {key!r} must be a positive integer, not {str(raw)[:40]!r}.") from None
    if isinstance(raw, bool) or number < 1:
        raise UIError(422, f"the field {key!r} must be a positive integer, not {raw!r}.")
    return number


def _version(fields: Mapping[str, Any]) -> int:
    return _positive(fields.get("version"), "version")


def _reason(fields: Mapping[str, Any]) -> str:
    reason = fields.get("reason", "")
    if reason is None:
        return ""
    if not isinstance(reason, str) or len(reason) > MAX_REASON:
        raise UIError(422, f"the field 'reason' must be text of at most {MAX_REASON} characters.")
    return reason.strip()
