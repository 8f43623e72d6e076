"""The production models a service answers with, swapped atomically when the store changes."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from threadpoolctl import ThreadpoolController

from loopline.core.errors import NotFoundError, did_you_mean
from loopline.train import ModelBundle

if TYPE_CHECKING:
    from loopline.store import Store


@dataclass(frozen=True)
class LoadedModel:
    """A loaded bundle and the version it came from."""

    name: str
    version: int
    bundle: ModelBundle
    load_seconds: float


class ModelCache:
    """Holds the production version of every model; ``refresh`` loads promotions in the background.

    Thread-safety: ``get`` never blocks and returns one consistent version; the new version is loaded completely
    before it replaces the old one in a single assignment, so a request sees either, never a mix. Refreshes run
    one at a time (the poller and the admin endpoints may ask at once).
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._models: dict[str, LoadedModel] = {}
        self._lock = threading.Lock()
        self._refreshing = threading.Lock()

    def refresh(self) -> list[LoadedModel]:
        """Load production versions that changed; returns the newly loaded ones."""
        with self._refreshing:
            loaded = []
            for name in self.store.models.names():
                production = self.store.models.production(name)
                current = self._models.get(name)
                if production is None or (current and current.version == production.version):
                    continue
                loaded.append(self.load(name, production.version, production.bundle_digest))
            return loaded

    def load(self, name: str, version: int, digest: str) -> LoadedModel:
        """Load one version (verified digest, safe format) and make it the served one."""
        started = time.perf_counter()
        bundle = ModelBundle.from_bytes(self.store.artifacts.get_bytes(digest))
        model = LoadedModel(name, version, bundle, time.perf_counter() - started)
        with self._lock:
            self._models = {**self._models, name: model}
        return model

    def get(self, name: str, version: int | None = None) -> LoadedModel:
        """The served model (one consistent version per call); NotFoundError names the known ones."""
        model = self._models.get(name)
        if model is None:
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


class ModelRunner:
    """Runs predictions on one worker thread, off the event loop, with native thread pools at one thread.

    While a prediction runs the event loop stays free: health checks, metrics and quick refusals still answer.
    One worker, because the native thread-pool limit is process-wide for some libraries and must be set and
    restored from one thread only; one-row predictions are fastest on one thread anyway. ``start`` after the
    models are loaded (so their OpenMP/BLAS libraries are found), ``close`` waits for the running prediction.
    """

    def __init__(self) -> None:
        self._executor: ThreadPoolExecutor | None = None
        self._controller: ThreadpoolController | None = None

    def start(self) -> None:
        """Find the native thread pools and start the worker."""
        self._controller = ThreadpoolController()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="loopline-predict")

    async def predict(self, model: LoadedModel, records: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], float]:
        """The model's outputs for ``records`` and the seconds the model took."""
        if self._executor is None or self._controller is None:
            raise RuntimeError("ModelRunner.predict before start()")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, _predict, self._controller, model, records)

    def close(self) -> None:
        """Finish the running prediction and stop the worker."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None


def _predict(
    controller: ThreadpoolController, model: LoadedModel, records: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], float]:
    with controller.limit(limits=1):
        started = time.perf_counter()
        outputs = model.bundle.predict_records(records)
        return outputs, time.perf_counter() - started
