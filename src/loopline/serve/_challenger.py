"""Challengers: a second version of a model that scores live traffic beside the production one (the champion).

A **shadow** (``--shadow NAME=VERSION`` or ``--shadow NAME@ALIAS``) scores every request of its model after the
champion has answered, off the request path (:class:`loopline.serve._shadow.ShadowScorer`); its answers are
logged, never returned. A **canary** (``--canary NAME=VERSION:SHARE`` or ``NAME@ALIAS:SHARE``, SHARE in
(0, 0.5]) answers a deterministic share of the requests itself: :func:`canary_takes` hashes the request key (the
``X-Request-Key`` header, or else the request body), so a retried request lands on the same side.
One challenger per model.

A designation by alias (``churn@shadow``, ``churn@canary:0.1``) follows the store-side alias
(``loopline models alias churn 7 shadow``): every refresh of the service (``refresh_interval``, the same poll
that follows ``production``) reads where the alias points, loads a version it moved to and swaps it in; while the
alias points nowhere the model has no challenger.

The designation is checked when the service starts (:func:`check_designations`): the model and version (or the
alias's version) exist and the version can be served (the store's servability check). A challenger whose version
becomes the production one (it was promoted) stops challenging: the service then answers with it as the champion.
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
from loopline.store import ALIAS_PATTERN

if TYPE_CHECKING:
    from loopline.serve._models import LoadedModel
    from loopline.store import Store

log = logging.getLogger("loopline.serve")

SHADOW, CANARY = "shadow", "canary"
MAX_CANARY_SHARE = 0.5
REQUEST_KEY_HEADER = "x-request-key"
_TARGET = r"(?P<name>[^=@\s]+)(?:=(?P<version>[0-9]+)|@(?P<alias>[^:\s]+))"
_SHADOW = re.compile(rf"^{_TARGET}$")
_CANARY = re.compile(rf"^{_TARGET}:(?P<share>[0-9.eE+-]+)$")
_ALIAS = re.compile(ALIAS_PATTERN)


@dataclass(frozen=True)
class Designation:
    """Version ``version`` of model ``name`` challenges its production version as a ``role`` (``"shadow"`` or
    ``"canary"``); ``share`` is the canary's share of the requests (1.0 for a shadow: it scores them all).
    With ``alias`` the version is wherever that store-side alias points (``version`` is then 0)."""

    name: str
    version: int
    role: str
    share: float = 1.0
    alias: str | None = None

    @property
    def target(self) -> str:
        """``NAME=VERSION`` or ``NAME@ALIAS``, as written on the command line."""
        return f"{self.name}@{self.alias}" if self.alias else f"{self.name}={self.version}"


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
    return "churn=3 or churn@shadow" if role == SHADOW else "churn=3:0.1 or churn@canary:0.1"


def _parse(text: str, role: str) -> Designation:
    match = (_SHADOW if role == SHADOW else _CANARY).fullmatch(str(text).strip())
    shape = "NAME=VERSION or NAME@ALIAS" if role == SHADOW else "NAME=VERSION:SHARE or NAME@ALIAS:SHARE"
    if match is None:
        raise ConfigError(f"--{role} {text!r} is not {shape}.", key=role, hint=f"Write it like --{role} {_form(role)}.")
    alias = match["alias"]
    version = 0 if alias else int(match["version"])
    if alias and (not _ALIAS.fullmatch(alias) or alias == "production"):
        raise ConfigError(
            f"--{role} {text!r}: {alias!r} is not an alias a challenger can follow.",
            key=role,
            hint="Name a lowercase alias other than production, e.g. --shadow churn@shadow.",
        )
    if not alias and version < 1:
        raise ConfigError(f"--{role} {text!r}: the version must be at least 1.", key=role, hint="Versions start at 1.")
    if role == SHADOW:
        return Designation(match["name"], version, role, alias=alias)
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
    return Designation(match["name"], version, role, share, alias=alias)


def check_designations(store: Store, designations: Sequence[Designation]) -> None:
    """Refuse a designation the service could not honour: an unknown model or version, the production version
    itself, or a version that cannot be served (the store's servability check: digest, allowlist, a load)."""
    models = store.models.with_check(check_servable)
    for item in designations:
        flag = f"--{item.role} {item.target}"
        try:
            found = models.get(item.name, _version(store, item))
        except NotFoundError as exc:
            raise ConfigError(f"{flag}: {exc.message}", key=item.role, hint=exc.hint) from None
        production = models.production(item.name)
        if item.alias is None and production is not None and production.version == item.version:
            raise ConfigError(
                f"{flag}: version {item.version} is the production version of {item.name!r}; it cannot challenge "
                "itself.",
                key=item.role,
                hint="Designate another version (`loopline models list` shows them).",
            )
        try:
            models.verify(item.name, found.version, found.bundle_digest)
        except LooplineError as exc:
            raise ConfigError(f"{flag}: {exc.message}", key=item.role, hint=exc.hint) from None


def _version(store: Store, item: Designation) -> int:
    """The designated version: the number given, or where the alias points now (NotFoundError: nowhere)."""
    if item.alias is None:
        return item.version
    version = store.models.resolve(item.name, item.alias)
    if version is None:
        store.models.get(item.name)  # an unknown model says so
        raise NotFoundError(
            f"alias {item.alias!r} of model {item.name!r} points at no version.",
            hint=f"Set it first: `loopline models alias {item.name} VERSION {item.alias}`.",
        )
    return version


def canary_takes(key: bytes, share: float) -> bool:
    """Whether the request with ``key`` goes to the canary: its hash, as a fraction of [0, 1), is below
    ``share`` (the same key always lands on the same side)."""
    digest = hashlib.blake2b(key, digest_size=8).digest()
    return int.from_bytes(digest, "big") < share * 2**64


class Challengers:
    """The loaded challenger of each designated model (thread-safe like :class:`ModelCache`: ``get`` never
    blocks; ``refresh`` loads what is missing or moved, one refresh at a time)."""

    def __init__(self, store: Store, designations: Sequence[Designation], *, retry_seconds: float = 60.0) -> None:
        self.store = store
        self.designations = {item.name: item for item in designations}
        self.retry_seconds = retry_seconds
        self._loaded: dict[str, Challenger] = {}
        # name -> (reason, time.monotonic() of the failure, the version that failed)
        self._failed: dict[str, tuple[str, float, int]] = {}
        self._refreshing = threading.Lock()

    def refresh(self) -> list[Challenger]:
        """Load the designated versions not loaded yet, and the versions an alias moved to (an alias that points
        nowhere any more ends its challenger); a version that fails to load is logged and skipped (the champion
        is served all the same), and tried again after ``retry_seconds``; returns the newly loaded ones. Cheap
        when nothing changed (one indexed read per alias): the service's poller calls it with the model cache's
        refresh."""
        loaded: list[Challenger] = []
        with self._refreshing:
            for name, item in self.designations.items():
                challenger = self._refresh_one(name, item)
                if challenger is not None:
                    loaded.append(challenger)
        return loaded

    def _refresh_one(self, name: str, item: Designation) -> Challenger | None:
        from loopline.serve._models import LoadedModel

        version = item.version if item.alias is None else self.store.models.resolve(name, item.alias)
        current = self._loaded.get(name)
        if version is None:  # the alias was removed: no challenger until it is set again
            if current is not None:
                self._loaded = {k: v for k, v in self._loaded.items() if k != name}
                log.info("%s %s: alias %r points nowhere; no challenger", item.role, name, item.alias)
            return None
        failed = self._failed.get(name)
        if current is not None and current.model.version == version:
            return None
        if failed and failed[2] == version and time.monotonic() - failed[1] < self.retry_seconds:
            return None
        try:
            found = self.store.models.get(name, version)
            bundle = verify_bundle(self.store.artifacts.get_bytes(found.bundle_digest))
        except LooplineError as exc:
            self._failed = {**self._failed, name: (exc.message, time.monotonic(), version)}
            log.warning("%s %s version %d could not be loaded: %s", item.role, name, version, exc.message)
            return None
        self._failed = {k: v for k, v in self._failed.items() if k != name}
        challenger = Challenger(item, LoadedModel(name, version, bundle, 0.0))
        self._loaded = {**self._loaded, name: challenger}
        return challenger

    def get(self, name: str, champion: int) -> Challenger | None:
        """The challenger of ``name`` while the champion is version ``champion`` (None: none, not loaded, or it
        is the champion now)."""
        challenger = self._loaded.get(name)
        if challenger is None or challenger.model.version == champion:
            return None
        return challenger

    def snapshot(self) -> dict[str, dict[str, object]]:
        """name -> ``{"version", "role", "share", "loaded"}`` (and ``"alias"`` for one that follows an alias,
        ``"reason"`` when its version failed to load) of each designation (for /health)."""
        found: dict[str, dict[str, object]] = {}
        for name, item in sorted(self.designations.items()):
            loaded = self._loaded.get(name)
            failed = self._failed.get(name)
            version = loaded.model.version if loaded else failed[2] if failed else item.version or None
            found[name] = {
                "version": version,
                "role": item.role,
                "share": item.share,
                "loaded": loaded is not None,
                **({"alias": item.alias} if item.alias else {}),
                **({"reason": failed[0]} if failed else {}),
            }
        return found
