"""The Store: one metadata database plus one artifact directory, opened and migrated together."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from types import TracebackType

from sqlalchemy import Engine
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from loopline.core.errors import StoreError
from loopline.core.settings import Settings
from loopline.store._check import DEFAULT_GRACE, CheckReport, check_store
from loopline.store._engine import create_store_engine, masked, parse_url
from loopline.store._migrate import upgrade
from loopline.store.artifacts import ArtifactStore
from loopline.store.datasets import DatasetRepository
from loopline.store.models import ModelRepository
from loopline.store.predictions import PredictionLog
from loopline.store.runs import RunRepository


class Store:
    """Runs, models, predictions (in the metadata database) and artifacts (content-addressed files).

    Build one with :meth:`open`. The store URL's password never appears in its messages or repr.
    """

    def __init__(self, engine: Engine, url: URL, artifacts: ArtifactStore) -> None:
        self.engine = engine
        self.url = url
        self.artifacts = artifacts
        self.runs = RunRepository(engine)
        self.models = ModelRepository(engine, artifacts)
        self.predictions = PredictionLog(engine)
        self.datasets = DatasetRepository(engine, artifacts)

    @classmethod
    def open(cls, url: str | None = None, artifact_root: str | Path | None = None) -> Store:
        """Open (and migrate to the newest schema) the store at ``url``.

        Missing arguments come from :meth:`Settings.from_env`: ``LOOPLINE_STORE_URL`` or
        ``$LOOPLINE_HOME/loopline.db``, and ``$LOOPLINE_HOME/artifacts``. Safe to call from several
        processes at once on a fresh database.
        """
        if url is None or artifact_root is None:
            settings = Settings.from_env()
            url = url or settings.store_url
            artifact_root = artifact_root or settings.artifact_root
        parsed = parse_url(url)
        engine = create_store_engine(parsed)
        try:
            upgrade(engine)
        except DBAPIError as exc:
            engine.dispose()
            raise _connection_error(parsed, exc) from None
        return cls(engine, parsed, ArtifactStore(artifact_root))

    def check(self, *, fix: bool = False, grace: timedelta = DEFAULT_GRACE) -> CheckReport:
        """Check the artifacts against the rows that reference them; ``fix`` removes old temp files and
        orphans (see :mod:`loopline.store._check`: referenced blobs and files younger than ``grace`` stay)."""
        return check_store(self.engine, self.artifacts, fix=fix, grace=grace)

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store(url={masked(self.url)!r}, artifacts={str(self.artifacts.root)!r})"


def _connection_error(url: URL, exc: DBAPIError) -> StoreError:
    reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else type(exc).__name__
    if url.password:
        reason = reason.replace(str(url.password), "***")
    return StoreError(
        f"cannot open the metadata store at {masked(url)}: {reason}",
        hint="Check that the database server is running and LOOPLINE_STORE_URL is right.",
    )
