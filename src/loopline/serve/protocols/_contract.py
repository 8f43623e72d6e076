"""The wire-protocol contract, and the registry every protocol (built-in or a package's own) is found in."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from fastapi.responses import JSONResponse

from loopline.core.registry import Registry

if TYPE_CHECKING:
    from fastapi import APIRouter
    from fastapi.responses import Response

    from loopline.serve._models import LoadedModel
    from loopline.serve._service import PredictionService

R = TypeVar("R")
"""What :meth:`WireProtocol.decode` hands back to :meth:`WireProtocol.encode` about one request."""


class WireProtocol(ABC, Generic[R]):
    """One way of asking a served model for predictions over HTTP: routes, body -> records, outputs -> body.

    A protocol is a stateless object shared by every request and every app (the registry holds one instance);
    it never sees the store, the prediction log, the metrics or the guards. Its routes hand each prediction to
    :meth:`PredictionService.predict`, which runs the shared path — predict token, model-name check,
    concurrency limit, model lookup, body read (size limit), :meth:`decode`, the input policy against the
    model's input schema (:func:`loopline.bundle.conform_records`), the model call (micro-batched), the
    prediction log, the metrics, :meth:`encode` — so every protocol gets the same guards, input policy,
    logging and metrics.

    Guarantees a protocol gives, and may rely on:

    - ``name`` is stable: it is the registry key, the ``endpoint`` label of ``loopline_requests`` and what
      ``ServeSettings.protocols`` selects.
    - :meth:`decode` runs on the event loop (so it stays CPU-only and short); it gets the whole body (at most
      ``max_body_bytes``), the request headers and the model found, and returns the records as sent
      (unchecked and unconverted: values stay as the client wrote them, text included, so that the one input
      policy converts them, drops the fields the model does not take and checks the record limit) with whatever
      :meth:`encode` needs from the request. It refuses with ``BadRequest`` (400/413/415/422) or
      ``SchemaValidationError`` (422); nothing else is expected from it.
    - :meth:`encode` gets the model that answered, one output per record in the records' order, and the
      prediction ids written to the log for them; it returns the response (status 200).
    - :meth:`error` shapes every error the protocol's routes answer — refusals of the guards (with their
      headers, e.g. ``Retry-After``), bad bodies, validation errors, unknown models. ``content`` always holds
      ``error`` (and ``hint``, ``errors`` or ``models`` where they apply); the status and headers given are kept.
    """

    name: ClassVar[str]

    @abstractmethod
    def routes(self, service: PredictionService) -> APIRouter:
        """The protocol's endpoints; each prediction goes through ``service.predict(request, self, name)``.

        The routes are added to the app flat, before the admin and health ones: the router's prefix and
        dependencies apply (FastAPI bakes them into each route), a lifespan or startup handler of its own does not.
        """

    @abstractmethod
    def decode(self, body: bytes, headers: Mapping[str, str], model: LoadedModel) -> tuple[Any, R]:
        """``(records, request)``: the request body as records for ``model``, and what :meth:`encode` needs."""

    @abstractmethod
    def encode(self, request: R, model: LoadedModel, outputs: list[dict[str, Any]], ids: list[str]) -> Response:
        """The answer to ``request``: ``outputs`` (``prediction`` and, for classifiers, ``probabilities``)."""

    def error(self, content: dict[str, Any], status: int, headers: Mapping[str, str] | None = None) -> Response:
        """An error response; by default the JSON ``content`` as it is (``{"error": ..., "hint"?: ...}``)."""
        return JSONResponse(content, status_code=status, headers=headers)


PROTOCOLS: Registry[WireProtocol[Any]] = Registry("protocol", "loopline.protocols", instantiate=True)
"""Wire protocols by name: the built-ins (``json``, ``oip``, ``mlflow``) and every ``loopline.protocols`` entry
point, loaded on first lookup; ``PROTOCOLS.register(name, protocol)`` adds one from code."""
