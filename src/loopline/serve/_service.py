"""The one prediction path every wire protocol's routes call, and the shared state it works with."""

from __future__ import annotations

import logging
import uuid
import weakref
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from loopline.bundle import FieldRule, ModelBundle, field_rules
from loopline.core.errors import NotFoundError, SchemaValidationError
from loopline.serve._challenger import CANARY, REQUEST_KEY_HEADER, canary_takes
from loopline.serve._guards import ConcurrencyLimit, Refusal, check_model_name, check_token, read_body
from loopline.serve._models import ModelNotReady
from loopline.serve._shadow import ShadowJob
from loopline.serve._validation import BadRequest, validate_records

log = logging.getLogger("loopline.serve")

if TYPE_CHECKING:
    from fastapi import Request
    from fastapi.responses import Response

    from loopline.serve._challenger import Challengers
    from loopline.serve._metrics import ServiceMetrics
    from loopline.serve._models import LoadedModel, ModelCache, ModelRunner
    from loopline.serve._predlog import PredictionLogger
    from loopline.serve._settings import Lifecycle, ServeSettings
    from loopline.serve._shadow import ShadowScorer
    from loopline.serve.protocols import WireProtocol


class PredictionService:
    """The served models and what every prediction goes through, whatever its wire protocol.

    :meth:`predict` runs, in this order: the predict token, the model-name pattern, the concurrency limit (then
    the request counts as in flight), the model lookup, the body read, the protocol's ``decode``, the input
    policy (:func:`loopline.bundle.conform_records`: types converted, extra fields dropped and counted, text
    lengths bounded), the model call (micro-batched by the runner), the prediction log (of the conformed
    records only), the metrics, the protocol's ``encode``. A model whose production version could not be loaded
    gets a 503 naming the reason. Refusals and errors are counted by cause and answered by the protocol's
    ``error``. A request that reached a model version and failed there is also counted for the store, with the
    prediction log (:meth:`PredictionLogger.count_error`): kind ``input`` when it failed validation (4xx), kind
    ``model`` when the model raised (a 500 naming the exception's type, its traceback in the service's log).
    Used from the event loop only, like the concurrency limit it holds.

    Challengers (:mod:`loopline.serve._challenger`): a model with a canary answers a deterministic share of its
    requests (by ``X-Request-Key``, else the body) with the canary version, and says so like any version (the
    protocols name the version that answered); a model with a shadow hands each answered request to the
    :class:`ShadowScorer` after its answer is encoded, without waiting. A request naming a version explicitly
    is answered by the champion only, never split nor shadowed.
    """

    def __init__(
        self,
        settings: ServeSettings,
        cache: ModelCache,
        runner: ModelRunner,
        predlog: PredictionLogger,
        metrics: ServiceMetrics,
        lifecycle: Lifecycle,
        challengers: Challengers | None = None,
        shadow: ShadowScorer | None = None,
    ) -> None:
        self.settings = settings
        self.cache = cache
        self.runner = runner
        self.predlog = predlog
        self.metrics = metrics
        self.lifecycle = lifecycle
        self.challengers = challengers
        self.shadow = shadow
        self.limit = ConcurrencyLimit(settings.max_concurrency)
        self.policy = settings.input_policy()
        self._rules: dict[int, list[FieldRule]] = {}  # by id of a loaded bundle, dropped with it

    async def predict(
        self, request: Request, protocol: WireProtocol[Any], name: str, version: int | None = None
    ) -> Response:
        """Answer one prediction request for model ``name`` (its served version, or exactly ``version``)."""
        try:
            check_token(request, self.settings.predict_token, role="predict")
            check_model_name(name)
        except Refusal as refused:
            return self._refuse(refused, protocol, "_unknown")
        limit, in_flight = self.limit, self.metrics.in_flight
        if not limit.try_acquire():
            return self._refuse(limit.refusal(), protocol, self.label(name))
        in_flight.inc()
        try:
            return await self._answer(request, protocol, name, version)
        finally:
            in_flight.dec()
            limit.release()

    async def predict_default(self, request: Request, protocol: WireProtocol[Any], named_path: str) -> Response:
        """Answer with the one served model; a 404 naming ``named_path`` (the route with a name) otherwise."""
        names = self.cache.names()
        if len(names) != 1:
            error = f"{len(names)} models are served; name one in the path: {named_path}."
            return protocol.error({"error": error, "models": names}, 404)
        return await self.predict(request, protocol, names[0])

    def label(self, name: str) -> str:
        """The model label of a metric: ``_unknown`` for a name not served, so clients cannot grow the label set."""
        known = name in self.cache.snapshot() or name in self.cache.failures()
        return name if known else "_unknown"

    def _rules_of(self, bundle: ModelBundle) -> list[FieldRule]:
        """The input policy's field rules of a loaded bundle, built once per bundle (not per request)."""
        rules = self._rules.get(id(bundle))
        if rules is None:
            rules = self._rules[id(bundle)] = field_rules(bundle.input_schema, self.policy)
            weakref.finalize(bundle, self._rules.pop, id(bundle), None)  # a swapped-out model takes its rules along
        return rules

    async def _answer(self, request: Request, protocol: WireProtocol[Any], name: str, version: int | None) -> Response:
        settings = self.settings
        model: LoadedModel | None = None
        try:
            model = champion = self.cache.get(name, version)
            body = await read_body(request, settings.max_body_bytes)
            model, shadow = self._route(request, champion, body) if version is None else (champion, None)
            raw, decoded = protocol.decode(body, request.headers, model)
            conformed = validate_records(
                raw, self._rules_of(model.bundle), max_records=settings.max_records, policy=self.policy
            )
        except (BadRequest, SchemaValidationError, NotFoundError, ModelNotReady) as exc:
            return self._reject(exc, protocol, self.label(name), model)
        records = conformed.records
        try:
            predicted = await self.runner.predict(model, records)
        except SchemaValidationError as exc:  # the bundle's own checks refused a record
            return self._reject(exc, protocol, name, model)
        except Exception as exc:  # the model raised: a 5xx error of this version, counted and logged
            return self._failed(exc, protocol, model)
        outputs = predicted.outputs
        ids, now = self._log(model, records, outputs, predicted.seconds / predicted.batch_rows, model is not champion)
        metrics, version_label = self.metrics, str(model.version)
        if conformed.extra_fields:
            metrics.extra_fields.labels(name).inc(conformed.extra_fields)
        for field, count in conformed.missing_fields.items():
            metrics.missing_fields.labels(name, field).inc(count)
        metrics.requests.labels(name, version_label, protocol.name).inc()
        metrics.latency.labels(name, version_label).observe(predicted.seconds)
        metrics.batch.labels(name).observe(len(records))
        response = protocol.encode(decoded, model, outputs, ids)
        if shadow is not None and self.shadow is not None:  # after the answer is ready; never waits
            self.shadow.submit(ShadowJob(model, shadow, records, ids, now))
        return response

    def _route(self, request: Request, champion: LoadedModel, body: bytes) -> tuple[LoadedModel, LoadedModel | None]:
        """The version that answers (the champion, or its canary for the canary's share of the request keys)
        and the shadow that scores the request afterwards, if any."""
        challenger = self.challengers.get(champion.name, champion.version) if self.challengers else None
        if challenger is None:
            return champion, None
        if challenger.designation.role != CANARY:
            return champion, challenger.model
        key = request.headers.get(REQUEST_KEY_HEADER)
        if canary_takes(key.encode() if key else body, challenger.designation.share):
            return challenger.model, None
        return champion, None

    def _refuse(self, refused: Refusal, protocol: WireProtocol[Any], label: str) -> Response:
        self.metrics.errors.labels(label, refused.cause).inc()
        return protocol.error(refused.content(), refused.status, refused.headers)

    def _reject(
        self, exc: Exception, protocol: WireProtocol[Any], label: str, model: LoadedModel | None = None
    ) -> Response:
        content: dict[str, Any]
        if isinstance(exc, BadRequest):
            cause, status, content = f"http_{exc.status}", exc.status, {"error": exc.message}
        elif isinstance(exc, ModelNotReady):
            cause, status, content = "not_ready", 503, {"error": exc.message, "hint": exc.hint}
        elif isinstance(exc, SchemaValidationError):
            cause, status, content = "validation", 422, {"error": str(exc), "errors": exc.errors}
        else:
            cause, status, content = "not_found", 404, {"error": str(exc)}
        self.metrics.errors.labels(label, cause).inc()
        if model is not None and status < 500:  # the version was chosen: the input failed on it
            self.predlog.count_error(model.name, model.version, "input", cause)
        return protocol.error(content, status)

    def _failed(self, exc: Exception, protocol: WireProtocol[Any], model: LoadedModel) -> Response:
        """The answer to a request the model raised on: a 500 naming the exception type (not its message,
        which may hold the inputs), the traceback in the service's log, the failure counted."""
        kind = type(exc).__name__
        log.error("model %r v%d raised %s on a request", model.name, model.version, kind, exc_info=exc)
        self.metrics.errors.labels(model.name, "model_error").inc()
        self.predlog.count_error(model.name, model.version, "model", kind)
        error = f"model {model.name!r} v{model.version} failed on this request ({kind})."
        hint = "The service's log has the traceback; check the inputs against the model's schema."
        return protocol.error({"error": error, "hint": hint}, 500)

    def _log(
        self,
        model: LoadedModel,
        records: list[dict[str, Any]],
        outputs: list[dict[str, Any]],
        seconds_per_row: float,
        canary: bool = False,
    ) -> tuple[list[str], datetime]:
        """Log the rows; their ids and time. A canary's rows say ``"role": "canary"`` in their output."""
        from loopline.store import PredictionRow

        now = datetime.now(UTC)
        per_row = seconds_per_row * 1000
        ids = [uuid.uuid4().hex for _ in records]
        logged = [{**o, "role": CANARY} for o in outputs] if canary else outputs
        self.predlog.put(
            [
                PredictionRow(
                    prediction_id=i,
                    model_name=model.name,
                    model_version=model.version,
                    created_at=now,
                    inputs=r,
                    output=o,
                    latency_ms=per_row,
                )
                for i, r, o in zip(ids, records, logged, strict=True)
            ]
        )
        return ids, now
