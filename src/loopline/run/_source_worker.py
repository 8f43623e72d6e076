"""The child process of a supervised source: ``python -m loopline.run._source_worker`` with a job on stdin.

It ingests one source in follow mode into its dataset with the ingestion engine (:func:`ingest_source`: every
batch committed with its checkpoint, acknowledged after), until SIGTERM or SIGINT: the batch in hand is
finished and committed, then the process exits 0. It also stops when its parent dies, so that a supervisor
killed with ``kill -9`` leaves no orphan ingesting. Its outcome is written as JSON to the job's
``result_file`` (the error, and whether a restart can cure it); exit codes: 0 stopped, 1 failed, 3 failed
for good (a config or data error, a missing extra).

The job travels on stdin, not on the command line, so that a store URL's password never shows in ``ps``.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loopline.ingest import Batch, Limits, Source

EXIT_STOPPED = 0
EXIT_FAILED = 1
EXIT_PERMANENT = 3
_PARENT_CHECK_S = 1.0
#: how often the broker's backlog is asked for (between batches)
BACKLOG_EVERY_S = 5.0


@dataclass(frozen=True)
class SourceJob:
    """What one child needs: where the store is, which step's source into which dataset, and how."""

    store_url: str
    artifacts: str
    home: str
    step: str
    dataset: str
    source: dict[str, Any]
    policy: str
    batch_rows: int
    batch_seconds: float
    result_file: str
    #: where the child keeps the broker's backlog
    progress_file: str

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> SourceJob:
        return cls(**json.loads(text))


@dataclass(frozen=True)
class WorkerResult:
    """How a child ended: ``status`` stopped or failed, the error, and whether it is ``permanent``."""

    status: str
    error: str | None = None
    permanent: bool = False
    rows: int = 0

    @classmethod
    def read(cls, path: Path) -> WorkerResult | None:
        """The result a child left (None: it left none, e.g. killed)."""
        try:
            return cls(**json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            return None

    def write(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self)), encoding="utf-8")
        os.replace(tmp, path)


def run_job(job: SourceJob, stop: threading.Event) -> WorkerResult:
    """Ingest the job's source until ``stop``; never raises (the outcome is the result)."""
    from loopline.core.errors import SourceUnavailableError
    from loopline.run._ingest import PERMANENT, ingest_source
    from loopline.run.steps._ingest import build_source
    from loopline.store import Store

    try:
        with Store.open(job.store_url, job.artifacts, local_dir=job.home) as store:
            report = ingest_source(
                store,
                _Sampled(build_source(job.source), Path(job.progress_file)),
                dataset=job.dataset,
                source_name=job.step,
                follow=True,
                limits=Limits(job.batch_rows, job.batch_seconds),
                policy=job.policy,
                stop=stop,
            )
    except SourceUnavailableError as exc:  # a DataError that reconnecting may cure
        return WorkerResult("failed", _describe(exc))
    except PERMANENT as exc:
        return WorkerResult("failed", _describe(exc), permanent=True)
    except Exception as exc:  # the supervisor restarts it with backoff
        return WorkerResult("failed", _describe(exc))
    return WorkerResult("stopped", rows=report.rows)


class _Sampled(Source):
    """The job's source, unchanged, that also writes the broker's backlog to a file every few seconds, from the
    ingesting thread (right after a batch was committed and acknowledged)."""

    type_name = "sampled"

    def __init__(self, inner: Source, path: Path) -> None:
        super().__init__(inner.config)
        self.inner = inner
        self.path = path
        self.sampled = 0.0

    def batches(self, position: Any, *, follow: bool = False, limits: Limits = Limits()) -> Iterator[Batch]:
        return self.inner.batches(position, follow=follow, limits=limits)

    def ack(self, batch: Batch) -> None:
        self.inner.ack(batch)
        if time.monotonic() - self.sampled >= BACKLOG_EVERY_S:
            self.sampled = time.monotonic()
            write_backlog(self.path, self.inner)

    def is_transient(self, error: BaseException) -> bool:
        return self.inner.is_transient(error)

    def backlog(self) -> int | None:
        return self.inner.backlog()

    def close(self) -> None:
        self.inner.close()


def write_backlog(path: Path, source: Source) -> None:
    """Ask the source for its backlog and keep it in ``path``; a failure is logged, never raised."""
    try:
        backlog = source.backlog()
    except Exception as exc:
        logging.getLogger("loopline.sources").debug("backlog unknown: %s", exc)
        backlog = None
    body = json.dumps({"backlog": backlog, "at": datetime.now(UTC).isoformat()})
    tmp = path.with_suffix(".progress.tmp")
    tmp.write_text(body, encoding="utf-8")
    os.replace(tmp, path)


def read_backlog(path: Path) -> int | None:
    """The backlog a child wrote last (None: none yet, or the source cannot tell)."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))["backlog"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return None if value is None else int(value)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _watch_parent(stop: threading.Event, parent: int) -> None:
    while not stop.wait(_PARENT_CHECK_S):
        if os.getppid() != parent:
            logging.getLogger("loopline.sources").warning("the supervisor is gone; stopping")
            stop.set()


def main() -> int:
    """Entry point of the child (see the module docstring)."""
    job = SourceJob.from_json(sys.stdin.read())
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {job.step} %(levelname)s %(message)s")
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    threading.Thread(target=_watch_parent, args=(stop, os.getppid()), daemon=True).start()
    result = run_job(job, stop)
    if result.error:
        logging.getLogger("loopline.sources").error("%s", result.error)
    result.write(Path(job.result_file))
    if result.status == "stopped":
        return EXIT_STOPPED
    return EXIT_PERMANENT if result.permanent else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
