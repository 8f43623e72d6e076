"""Challengers: a second version of a model that scores live traffic beside the production one (the champion).

A **shadow** (``--shadow NAME=VERSION``) scores every request of its model after the champion has answered, off
the request path (:class:`loopline.serve._shadow.ShadowScorer`); its answers are logged, never returned. A
**canary** (``--canary NAME=VERSION:SHARE``, SHARE in (0, 0.5]) answers a deterministic share of the requests
itself: :func:`canary_takes` hashes the request key (the ``X-Request-Key`` header, or else the request body), so
a retried request lands on the same side. One challenger per model.

The designation is checked when the service starts (:func:`check_designations`): the model and version exist
and the version can be served (the store's servability check). A challenger whose version becomes the
production one (it was promoted) stops challenging: the service then answers with it as the champion.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from loopline.bundle import check_servable, verify_bundle
from loopline.core.errors import ConfigError, LooplineError, NotFoundError

if TYPE_CHECKING:
    from loopline.serve._models import LoadedModel
    from loopline.store import Store

log = logging.getLogger("loopline.serve")

SHADOW, CANARY = "shadow", "canary"
MAX_CANARY_SHARE = 0.5
REQUEST_KEY_HEADER = "x-request-key"
_SHADOW = re.compile(r"^(?P<name>[^=\s]+)=(?P<version>[0-9]+)$")
_CANARY = re.compile(r"^(?P<name>[^=\s]+)=(?P<version>[0-9]+):(?P<share>[0-9.eE+-]+)$")


@dataclass(frozen=True)
class Designation:
    """Version ``version`` of model ``name`` challenges its production version as a ``role`` (``"shadow"`` or
    ``"canary"``); ``share`` is the canary's share of the requests (1.0 for a shadow: it scores them all)."""

    name: str
    version: int
    role: str
    share: float = 1.0


@dataclass(frozen=True)
class Challenger:
    """A designation and its loaded version."""

    designation: Designation
    model: LoadedModel


def parse_designations(shadow: Sequence[str], canary: Sequence[str]) -> list[Designation]:
    """The designations of ``--shadow NAME=VERSION`` and ``--canary NAME=VERSION:SHARE`` values; a ConfigError
    names the bad value and the form that works."""
    found = [_parse(text, SHADOW) for text in _values(shadow, SHADOW)]
    found += [_parse(text, CANARY) for text in _values(canary, CANARY)]
    seen: set[str] = set()
    for item in found:
        if item.name in seen:
            raise ConfigError(
                f"model {item.name!r} has more than one challenger (--shadow/--canary).",
                key=item.role,
                hint="Designate one challenger per model: either a shadow or a canary.",
            )
        seen.add(item.name)
    return found


def _values(values: Sequence[str], role: str) -> list[str]:
    if isinstance(values, str):
        raise ConfigError(
            f"{role} is {values!r}; it must be a list of designations.", key=role, hint=f'Use e.g. ["{_form(role)}"].'
        )
    return list(values)


def _form(role: str) -> str:
    return "churn=3" if role == SHADOW else "churn=3:0.1"


def _parse(text: str, role: str) -> Designation:
    match = (_SHADOW if role == SHADOW else _CANARY).fullmatch(str(text).strip())
    shape = "NAME=VERSION" if role == SHADOW else "NAME=VERSION:SHARE"
    if match is None:
        raise ConfigError(f"--{role} {text!r} is not {shape}.", key=role, hint=f"Write it like --{role} {_form(role)}.")
    version = int(match["version"])
    if version < 1:
        raise ConfigError(f"--{role} {text!r}: the version must be at least 1.", key=role, hint="Versions start at 1.")
    if role == SHADOW:
        return Designation(match["name"], version, role)
    try:
        share = float(match["share"])
    except ValueError:
        share = float("nan")
    if not 0 < share <= MAX_CANARY_SHARE:
        raise ConfigError(
            f"--canary {text!r}: the share {match['share']} must be above 0 and at most {MAX_CANARY_SHARE}.",
            key=role,
            hint="Give the canary a small share of the traffic, e.g. --canary churn=3:0.1 (10%).",
        )
    return Designation(match["name"], version, role, share)


def check_designations(store: Store, designations: Sequence[Designation]) -> None:
    """Refuse a designation the service could not honour: an unknown model or version, the production version
    itself, or a version that cannot be served (the store's servability check: digest, allowlist, a load)."""
    models = store.models.with_check(check_servable)
    for item in designations:
        flag = f"--{item.role} {item.name}={item.version}"
        try:
            found = models.get(item.name, item.version)
        except NotFoundError as exc:
            raise ConfigError(f"{flag}: {exc.message}", key=item.role, hint=exc.hint) from None
        production = models.production(item.name)
        if production is not None and production.version == item.version:
            raise ConfigError(
                f"{flag}: version {item.version} is the production version of {item.name!r}; it cannot challenge "
                "itself.",
                key=item.role,
                hint="Designate another version (`loopline models list` shows them).",
            )
        try:
            models.verify(item.name, item.version, found.bundle_digest)
        except LooplineError as exc:
            raise ConfigError(f"{flag}: {exc.message}", key=item.role, hint=exc.hint) from None


def canary_takes(key: bytes, share: float) -> bool:
    """Whether the request with ``key`` goes to the canary: its hash, as a fraction of [0, 1), is below
    ``share`` (the same key always lands on the same side)."""
    digest = hashlib.blake2b(key, digest_size=8).digest()
    return int.from_bytes(digest, "big") < share * 2**64


class Challengers:
    """The loaded challenger of each designated model (thread-safe like :class:`ModelCache`: ``get`` never
    blocks; ``refresh`` loads what is missing, one refresh at a time)."""

    def __init__(self, store: Store, designations: Sequence[Designation], *, retry_seconds: float = 60.0) -> None:
        self.store = store
        self.designations = {item.name: item for item in designations}
        self.retry_seconds = retry_seconds
        self._loaded: dict[str, Challenger] = {}
        self._failed: dict[str, tuple[str, float]] = {}  # name -> (reason, time.monotonic() of the failure)
        self._refreshing = threading.Lock()

    def refresh(self) -> list[Challenger]:
        """Load the designated versions not loaded yet; a version that fails to load is logged and skipped (the
        champion is served all the same), and tried again after ``retry_seconds``; returns the newly loaded
        ones. Cheap when everything is loaded: the service's poller calls it with the model cache's refresh."""
        from loopline.serve._models import LoadedModel

        loaded: list[Challenger] = []
        with self._refreshing:
            for name, item in self.designations.items():
                failed = self._failed.get(name)
                if name in self._loaded or (failed and time.monotonic() - failed[1] < self.retry_seconds):
                    continue
                try:
                    found = self.store.models.get(name, item.version)
                    bundle = verify_bundle(self.store.artifacts.get_bytes(found.bundle_digest))
                except LooplineError as exc:
                    self._failed = {**self._failed, name: (exc.message, time.monotonic())}
                    log.warning("%s %s version %d could not be loaded: %s", item.role, name, item.version, exc.message)
                    continue
                self._failed = {k: v for k, v in self._failed.items() if k != name}
                challenger = Challenger(item, LoadedModel(name, item.version, bundle, 0.0))
                self._loaded = {**self._loaded, name: challenger}
                loaded.append(challenger)
        return loaded

    def get(self, name: str, champion: int) -> Challenger | None:
        """The challenger of ``name`` while the champion is version ``champion`` (None: none, not loaded, or it
        is the champion now)."""
        challenger = self._loaded.get(name)
        if challenger is None or challenger.model.version == champion:
            return None
        return challenger

    def snapshot(self) -> dict[str, dict[str, object]]:
        """name -> ``{"version", "role", "share", "loaded"}`` of each designation (for /health)."""
        return {
            name: {
                "version": item.version,
                "role": item.role,
                "share": item.share,
                "loaded": name in self._loaded,
                **({"reason": self._failed[name][0]} if name in self._failed else {}),
            }
            for name, item in sorted(self.designations.items())
        }
