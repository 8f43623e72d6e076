"""The production models a service answers with, swapped atomically when the store changes."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

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
    """Holds the production version of every model; ``refresh`` loads promotions in the background."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._models: dict[str, LoadedModel] = {}
        self._lock = threading.Lock()

    def refresh(self) -> list[LoadedModel]:
        """Load production versions that changed; returns the newly loaded ones."""
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
