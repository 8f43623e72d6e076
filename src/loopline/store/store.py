"""The Store: one metadata database plus one artifact store, opened and migrated together."""

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
from loopline.store.alerts import AlertRepository
from loopline.store.artifacts import ArtifactStore, LocalArtifactStore, open_artifacts
from loopline.store.datasets import DatasetRepository
from loopline.store.feedback import FeedbackRepository
from loopline.store.models import BundleCheck, ModelRepository
from loopline.store.predictions import PredictionLog
from loopline.store.runs import RunRepository
from loopline.store.windows import WindowRepository


class Store:
    """Runs, models, predictions and their labels, monitoring windows and alerts (in the metadata database)
    and artifacts (content-addressed blobs).

    Build one with :meth:`open`. ``local_dir`` is a folder on this machine for state that is not an
    artifact (the prediction service's log spool). ``check_bundle`` is the check a model bundle must pass to
    be registered or made production (:class:`~loopline.store.ModelRepository`). Neither the store URL's
    password nor any credential of the artifact store appears in its messages or repr.
    """

    def __init__(
        self,
        engine: Engine,
        url: URL,
        artifacts: ArtifactStore,
        local_dir: Path | None = None,
        check_bundle: BundleCheck | None = None,
    ) -> None:
        self.engine = engine
        self.url = url
        self.artifacts = artifacts
        self.local_dir = local_dir if local_dir is not None else _default_local_dir(artifacts)
        self.runs = RunRepository(engine)
        self.models = ModelRepository(engine, artifacts, check_bundle)
        self.predictions = PredictionLog(engine)
        self.datasets = DatasetRepository(engine, artifacts)
        self.feedback = FeedbackRepository(engine)
        self.windows = WindowRepository(engine)
        self.alerts = AlertRepository(engine)

    @classmethod
    def open(
        cls,
        url: str | None = None,
        artifacts: str | Path | ArtifactStore | None = None,
        *,
        local_dir: str | Path | None = None,
        check_bundle: BundleCheck | None = None,
    ) -> Store:
        """Open (and migrate to the newest schema) the store at ``url`` with the artifacts at ``artifacts``.

        ``artifacts`` is a folder path or a URL (``s3://bucket/prefix``, any fsspec URL; see
        :func:`~loopline.store.artifacts.open_artifacts`). Missing arguments come from
        :meth:`Settings.from_env`: ``LOOPLINE_STORE_URL`` or ``$LOOPLINE_HOME/loopline.db``, and
        ``LOOPLINE_ARTIFACTS_URL`` or ``$LOOPLINE_HOME/artifacts``. ``local_dir`` defaults to the folder
        that holds a local artifact folder, else ``$LOOPLINE_HOME``. ``check_bundle``: what a model bundle
        must pass, besides its digest, before a version is registered or made production; loopline's commands,
        services and pipeline workers pass :func:`loopline.bundle.verify_bundle` (None: the digest only). Safe
        to call from several processes at once on a fresh database.
        """
        if url is None or artifacts is None:
            settings = Settings.from_env()
            url = url or settings.store_url
            artifacts = artifacts or settings.artifacts
        opened = open_artifacts(artifacts)  # refuses a URL with credentials before anything connects
        parsed = parse_url(url)
        engine = create_store_engine(parsed)
        try:
            upgrade(engine)
        except DBAPIError as exc:
            engine.dispose()
            raise _connection_error(parsed, exc) from None
        return cls(engine, parsed, opened, None if local_dir is None else Path(local_dir), check_bundle)

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
        return f"Store(url={masked(self.url)!r}, artifacts={self.artifacts.location!r})"


def _default_local_dir(artifacts: ArtifactStore) -> Path:
    """The folder above a local artifact folder (``$LOOPLINE_HOME`` in the default layout), else the home."""
    if isinstance(artifacts, LocalArtifactStore):
        return artifacts.root.parent
    return Settings.from_env().home


def _connection_error(url: URL, exc: DBAPIError) -> StoreError:
    reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else type(exc).__name__
    if url.password:
        reason = reason.replace(str(url.password), "***")
    return StoreError(
        f"cannot open the metadata store at {masked(url)}: {reason}",
        hint="Check that the database server is running and LOOPLINE_STORE_URL is right.",
    )
