"""Direct access to the objects under an artifact store's root, around the store: the tests use it to tamper
with blobs, drop temp objects and age everything, on a local folder and on S3 alike."""

from __future__ import annotations

import os
import time
from typing import Any

import fsspec
import pytest

import loopline.store._check

HOURS_AGO = 2 * 3600


class Raw:
    """The files (or objects) under ``location``, by their names relative to it (``ab/ab12…``)."""

    def __init__(self, location: str, monkeypatch: pytest.MonkeyPatch) -> None:
        self.location = location
        self.fs: Any
        self.fs, self.root = fsspec.core.url_to_fs(location, use_listings_cache=False)
        self.local = "file" in (self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,))
        self.monkeypatch = monkeypatch

    def path(self, name: str) -> str:
        return f"{self.root.rstrip('/')}/{name}"

    def write(self, name: str, data: bytes) -> None:
        if self.local:
            self.fs.makedirs(self.path(name).rsplit("/", 1)[0], exist_ok=True)
        self.fs.pipe_file(self.path(name), data)

    def read(self, name: str) -> bytes:
        return bytes(self.fs.cat_file(self.path(name)))

    def remove(self, name: str) -> None:
        self.fs.rm_file(self.path(name))

    def exists(self, name: str) -> bool:
        return bool(self.fs.isfile(self.path(name)))

    def names(self) -> list[str]:
        """Every file under the root, relative to it."""
        prefix = self.root.rstrip("/") + "/"
        return sorted(name.removeprefix(prefix) for name in self.fs.find(self.root))

    def age_everything(self) -> None:
        """Make what is stored now look two hours old to ``store check``, and anything written later young.

        A local folder gets old mtimes. An object's modification time cannot be set, so the check's clock is
        moved instead: it reads ``now + 1 h`` (the default grace) from the moment everything stored is older
        than ``now``; the test then waits until the server's one-second timestamps are past ``now``.
        """
        if self.local:
            past = time.time() - HOURS_AGO
            for name in self.names():
                os.utime(self.path(name), (past, past))
            return
        frozen = time.time() + 3600
        self.monkeypatch.setattr(loopline.store._check, "_now", lambda: frozen)
        time.sleep(1.1)
