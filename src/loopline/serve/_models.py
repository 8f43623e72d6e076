"""The production models a service answers with, swapped atomically when the store changes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from threadpoolctl import ThreadpoolController

from loopline.bundle import ModelBundle, verify_bundle
from loopline.core.errors import LooplineError, NotFoundError, did_you_mean

if TYPE_CHECKING:
    from loopline.store import Store

log = logging.getLogger("loopline.serve")


@dataclass(frozen=True)
class LoadedModel:
    """A loaded bundle and the version it came from."""

    name: str
    version: int
    bundle: ModelBundle
    load_seconds: float


@dataclass(frozen=True)
class LoadFailure:
    """A production version the service could not load: ``reason`` is one line; ``at`` is ``time.monotonic()``."""

    name: str
    version: int
    reason: str
    at: float


class ModelNotReady(LooplineError):
    """A production model the service could not load and serves no version of: its requests get a 503."""

    def __init__(self, failure: LoadFailure) -> None:
        self.failure = failure
        super().__init__(
            f"model {failure.name!r} is not ready: version {failure.version} could not be loaded: {failure.reason}",
            hint="Promote a version that loads (`loopline models promote`); the service picks it up by itself.",
        )


class ModelCache:
    """Holds the production version of every model; ``refresh`` loads promotions in the background.

    Thread-safety: ``get`` never blocks and returns one consistent version; the new version is loaded completely
    before it replaces the old one in a single assignment, so a request sees either, never a mix. Refreshes run
    one at a time (the poller and the admin endpoints may ask at once).

    A version that does not load (:func:`loopline.bundle.verify_bundle` refuses it, or its artifact is missing or
    corrupt) never stops the others: it is kept as a :class:`LoadFailure`, logged as one line on the
    ``loopline.serve`` logger, and tried again only after ``retry_seconds`` (or on ``refresh(retry=True)``).
    Meanwhile the version served before, if any, is still served; a model with none is not ready.
    """

    def __init__(self, store: Store, *, retry_seconds: float = 60.0) -> None:
        self.store = store
        self.retry_seconds = retry_seconds
        self._models: dict[str, LoadedModel] = {}
        self._failures: dict[str, LoadFailure] = {}
        self._lock = threading.Lock()
        self._refreshing = threading.Lock()

    def refresh(self, *, retry: bool = False) -> list[LoadedModel]:
        """Load production versions that changed; returns the newly loaded ones. ``retry``: try the versions
        that failed to load again now."""
        with self._refreshing:
            loaded = []
            for name in self.store.models.names():
                production = self.store.models.production(name)
                if production is None or self._settled(name, production.version, retry):
                    continue
                model = self._try_load(name, production.version, production.bundle_digest)
                if model is not None:
                    loaded.append(model)
            return loaded

    def load(self, name: str, version: int, digest: str) -> LoadedModel:
        """Load one version (verified digest, allowlist, a real load) and make it the served one."""
        started = time.perf_counter()
        bundle = verify_bundle(self.store.artifacts.get_bytes(digest))  # builds the fast path too
        model = LoadedModel(name, version, bundle, time.perf_counter() - started)
        with self._lock:
            self._models = {**self._models, name: model}
            self._failures = {k: v for k, v in self._failures.items() if k != name}
        return model

    def get(self, name: str, version: int | None = None) -> LoadedModel:
        """The served model (one consistent version per call); NotFoundError names the known ones,
        :class:`ModelNotReady` a model whose production version could not be loaded."""
        model = self._models.get(name)
        if model is None:
            failure = self._failures.get(name)
            if failure is not None:
                raise ModelNotReady(failure)
            hint = did_you_mean(name, self._models) or f"Served models: {', '.join(self._models) or 'none'}."
            raise NotFoundError(f"model {name!r} is not served.", hint=hint)
        if version is not None and version != model.version:
            raise NotFoundError(
                f"model {name!r} version {version} is not served (serving {model.version}).",
                hint="Promote it with `loopline models promote`.",
            )
        return model

    def names(self) -> list[str]:
        """Names of served models."""
        return sorted(self._models)

    def snapshot(self) -> dict[str, Any]:
        """name -> version of what is served."""
        return {name: m.version for name, m in self._models.items()}

    def failures(self) -> dict[str, LoadFailure]:
        """name -> the production version that could not be loaded (the model may still serve an older one)."""
        return dict(self._failures)

    def not_ready(self) -> dict[str, dict[str, Any]]:
        """name -> ``{"version", "reason"}`` for the models that serve no version because theirs did not load."""
        return {
            name: {"version": failure.version, "reason": failure.reason}
            for name, failure in sorted(self._failures.items())
            if name not in self._models
        }

    def _settled(self, name: str, version: int, retry: bool) -> bool:
        """Whether ``version`` is served already, or failed recently enough not to be tried again yet."""
        current = self._models.get(name)
        if current is not None and current.version == version:
            return True
        failure = self._failures.get(name)
        return (
            not retry
            and failure is not None
            and failure.version == version
            and time.monotonic() - failure.at < self.retry_seconds
        )

    def _try_load(self, name: str, version: int, digest: str) -> LoadedModel | None:
        try:
            return self.load(name, version, digest)
        except Exception as exc:  # a corrupt, refused or unreadable artifact: this model only
            text = exc.message if isinstance(exc, LooplineError) else f"{type(exc).__name__}: {exc}"
            reason = " ".join(text.split())
            failure = LoadFailure(name, version, reason, time.monotonic())
            with self._lock:
                self._failures = {**self._failures, name: failure}
            serving = self._models.get(name)
            still = f"; still serving version {serving.version}" if serving is not None else "; not ready"
            log.warning("model %r version %d could not be loaded%s: %s", name, version, still, reason)
            return None


class ModelRunner:
    """Runs predictions on one worker thread, off the event loop, merging concurrent requests into one call.

    While a prediction runs the event loop stays free: health checks, metrics and quick refusals still answer.
    One worker, because the native thread-pool limit is process-wide for some libraries and must be set and
    restored from one thread only; one-row predictions are fastest on one thread anyway. ``start`` after the
    models are loaded (so their OpenMP/BLAS libraries are found), ``close`` answers what is queued, then stops.

    Micro-batching: requests for the same loaded version (the same :class:`LoadedModel`) that wait while the
    worker is busy are merged into one ``predict_records`` call, oldest first, and the outputs split back per
    request. A batch closes at ``max_batch_rows`` records (a bigger request goes alone, never split) or when its
    oldest request has waited ``max_batch_delay`` seconds; with 0 the worker never waits, it merges what is
    queued. Versions are never mixed in one call. If a merged call raises, each of its requests is retried
    alone, so a failing request fails only itself. ``on_batch(model, requests, rows)`` is called after every
    model call, from the worker thread.
    """

    def __init__(
        self,
        *,
        max_batch_rows: int = 64,
        max_batch_delay: float = 0.0,
        on_batch: Callable[[LoadedModel, int, int], None] | None = None,
    ) -> None:
        self.max_batch_rows = max_batch_rows
        self.max_batch_delay = max_batch_delay
        self.on_batch = on_batch
        self._queue: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._controller: ThreadpoolController | None = None
        self._closing = False

    def start(self) -> None:
        """Find the native thread pools and start the worker."""
        self._controller = ThreadpoolController()
        self._closing = False
        self._thread = threading.Thread(target=self._work, name="loopline-predict", daemon=True)
        self._thread.start()

    async def predict(self, model: LoadedModel, records: list[dict[str, Any]]) -> Prediction:
        """The model's outputs for ``records``, with the model call they were part of."""
        if self._thread is None:
            raise RuntimeError("ModelRunner.predict before start()")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Prediction] = loop.create_future()
        self._queue.put(_Request(model, records, future, loop, time.monotonic()))
        return await future

    def close(self) -> None:
        """Answer the queued requests, then stop the worker."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    # -- the worker thread -----------------------------------------------------------------------

    def _work(self) -> None:
        waiting: deque[_Request] = deque()
        while waiting or not self._closing:
            self._receive(waiting, None if not waiting else 0.0)
            if not waiting:
                continue
            batch = _take(waiting, self.max_batch_rows)
            if self.max_batch_delay > 0 and not self._closing:
                self._fill(batch, waiting)
            self._run(batch)

    def _receive(self, waiting: deque[_Request], timeout: float | None) -> None:
        """Move what is queued into ``waiting``; block up to ``timeout`` (None: forever) for the first one."""
        try:
            item = self._queue.get(timeout=timeout) if timeout != 0.0 else self._queue.get_nowait()
            while True:
                if item is None:
                    self._closing = True
                else:
                    waiting.append(item)
                item = self._queue.get_nowait()
        except queue.Empty:
            return

    def _fill(self, batch: list[_Request], waiting: deque[_Request]) -> None:
        """Wait for more requests of the batch's model until it is full or its oldest has waited long enough."""
        deadline = batch[0].enqueued + self.max_batch_delay
        rows = sum(len(r.records) for r in batch)
        while rows < self.max_batch_rows and not self._closing:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._receive(waiting, left)
            rows += _take_more(batch, waiting, self.max_batch_rows - rows)
            if any(request.model is batch[0].model for request in waiting):
                return  # one of its model waits that does not fit: the batch is full

    def _run(self, batch: list[_Request]) -> None:
        if self._controller is None:
            raise RuntimeError("ModelRunner worker without start()")
        model = batch[0].model
        records = batch[0].records if len(batch) == 1 else [r for request in batch for r in request.records]
        try:
            with self._controller.limit(limits=1):
                started = time.perf_counter()
                outputs = model.bundle.predict_records(records)
                seconds = time.perf_counter() - started
            if len(outputs) != len(records):
                raise RuntimeError(f"the model returned {len(outputs)} outputs for {len(records)} records.")
        except Exception as exc:
            if len(batch) > 1:  # find the culprit: each request alone
                for request in batch:
                    self._run([request])
            else:
                _settle(batch, [exc])
            return
        if self.on_batch is not None:
            self.on_batch(model, len(batch), len(records))
        results: list[Prediction | BaseException] = []
        start = 0
        for request in batch:
            end = start + len(request.records)
            results.append(Prediction(outputs[start:end], seconds, len(records), len(batch)))
            start = end
        _settle(batch, results)


@dataclass(frozen=True)
class Prediction:
    """A request's outputs and the model call they came from (``seconds``, ``batch_rows``, ``batch_requests``)."""

    outputs: list[dict[str, Any]]
    seconds: float
    batch_rows: int
    batch_requests: int


@dataclass(frozen=True, eq=False)
class _Request:
    model: LoadedModel
    records: list[dict[str, Any]]
    future: asyncio.Future[Prediction]
    loop: asyncio.AbstractEventLoop
    enqueued: float


def _take(waiting: deque[_Request], max_rows: int) -> list[_Request]:
    """The oldest request, and after it the waiting ones of its model while they fit in ``max_rows``."""
    batch = [waiting.popleft()]
    _take_more(batch, waiting, max_rows - len(batch[0].records))
    return batch


def _take_more(batch: list[_Request], waiting: deque[_Request], room: int) -> int:
    """Move waiting requests of the batch's model that fit in ``room`` records into ``batch``; the rows taken."""
    taken = 0
    if room <= 0 or not waiting:
        return 0
    kept: list[_Request] = []
    while waiting:
        request = waiting.popleft()
        if request.model is batch[0].model and len(request.records) <= room - taken:
            batch.append(request)
            taken += len(request.records)
        else:
            kept.append(request)
    waiting.extend(kept)
    return taken


def _settle(batch: list[_Request], results: list[Prediction | BaseException]) -> None:
    """Hand each request its result on its event loop (one wake-up per loop and batch)."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Prediction], Prediction | BaseException]]] = {}
    for request, result in zip(batch, results, strict=True):
        by_loop.setdefault(request.loop, []).append((request.future, result))
    for loop, pairs in by_loop.items():
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            loop.call_soon_threadsafe(_resolve, pairs)


def _resolve(pairs: list[tuple[asyncio.Future[Prediction], Prediction | BaseException]]) -> None:
    for future, result in pairs:
        if future.done():  # cancelled: the client went away
            continue
        if isinstance(result, BaseException):
            future.set_exception(result)
        else:
            future.set_result(result)
