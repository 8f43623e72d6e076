"""Shadow scoring off the request path: a bounded queue and one thread that never holds up the champion.

``submit`` is called after the champion's answer is ready; it never blocks. When the queue is full (the
shadow is slower than the traffic) the request's shadow work is dropped and counted
(``loopline_shadow_dropped``), never waited for. The thread merges the queued requests of one shadow version
into one model call, logs each output as a row of the shadow's version (id: the champion row's id plus
``:shadow``; ``output["role"] == "shadow"``; the champion row's ``created_at``) and counts what it scored. A
shadow that raises is counted (``loopline_shadow_errors``) and logged once per minute; the champion's answers
were sent already.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from loopline.bundle import field_rules
from loopline.serve._challenger import SHADOW
from loopline.serve._validation import validate_records
from loopline.store.feedback import SHADOW_ID_SUFFIX

if TYPE_CHECKING:
    from loopline.bundle import InputPolicy
    from loopline.serve._metrics import ServiceMetrics
    from loopline.serve._models import LoadedModel
    from loopline.serve._predlog import PredictionLogger

log = logging.getLogger("loopline.serve")

_MAX_ROWS_PER_CALL = 256
_ERROR_LOG_EVERY = 60.0


@dataclass(frozen=True, eq=False)
class ShadowJob:
    """One request's records to score with ``shadow``, after ``champion`` answered them as ``ids``."""

    champion: LoadedModel
    shadow: LoadedModel
    records: list[dict[str, Any]]
    ids: list[str]
    created_at: datetime


class ShadowScorer:
    """Scores shadow jobs on its own thread (see the module doc). ``max_queue``: requests waiting at most."""

    def __init__(
        self, predlog: PredictionLogger, metrics: ServiceMetrics, policy: InputPolicy, *, max_queue: int = 256
    ) -> None:
        self.predlog = predlog
        self.metrics = metrics
        self.policy = policy
        self.max_queue = max_queue
        self._queue: queue.Queue[ShadowJob | None] = queue.Queue(maxsize=max_queue)
        self._thread: threading.Thread | None = None
        self._last_error = 0.0

    def start(self) -> None:
        """Start the thread (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="loopline-shadow", daemon=True)
            self._thread.start()

    def submit(self, job: ShadowJob) -> bool:
        """Queue ``job``; False (and counted as dropped) when the queue is full or the scorer is stopped."""
        try:
            if self._thread is None:
                raise queue.Full
            self._queue.put_nowait(job)
        except queue.Full:
            self.metrics.shadow_dropped.labels(job.champion.name).inc()
            return False
        return True

    def depth(self) -> int:
        """Requests waiting to be scored."""
        return self._queue.qsize()

    def close(self, timeout: float = 5.0) -> None:
        """Stop after the queued jobs (at most ``timeout`` seconds; what is left then is dropped and counted)."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._queue.put(None, timeout=max(deadline - time.monotonic(), 0.01))
                break
            except queue.Full:
                if time.monotonic() >= deadline:
                    self._drop_queued()
        thread.join(max(deadline - time.monotonic(), 0.1))

    # -- the thread ------------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            batch, stop = self._gather(job)
            self._score(batch)
            if stop:
                return

    def _gather(self, first: ShadowJob) -> tuple[list[ShadowJob], bool]:
        """``first`` and the queued jobs of the same shadow version that fit in one call; whether to stop after."""
        batch, rows = [first], len(first.records)
        while rows < _MAX_ROWS_PER_CALL:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                return batch, False
            if job is None:
                return batch, True
            if job.shadow is not first.shadow or job.champion.bundle.input_schema != first.champion.bundle.input_schema:
                self._score([job])  # another version: on its own
                continue
            batch.append(job)
            rows += len(job.records)
        return batch, False

    def _score(self, batch: list[ShadowJob]) -> None:
        from loopline.store import PredictionRow

        shadow = batch[0].shadow
        name, version = shadow.name, str(shadow.version)
        records = [record for job in batch for record in job.records]
        try:
            records = self._conformed(batch[0], records)
            started = time.perf_counter()
            outputs = shadow.bundle.predict_records(records)
            seconds = time.perf_counter() - started
            if len(outputs) != len(records):
                raise RuntimeError(f"the shadow returned {len(outputs)} outputs for {len(records)} records.")
        except Exception as exc:  # a failing shadow fails nothing but its own rows
            self.metrics.shadow_errors.labels(name).inc(len(batch))
            self._log_error(shadow, exc)
            return
        per_row = seconds * 1000 / len(records)
        rows, start = [], 0
        for job in batch:
            for offset, pid in enumerate(job.ids):
                rows.append(
                    PredictionRow(
                        prediction_id=pid + SHADOW_ID_SUFFIX,
                        model_name=name,
                        model_version=shadow.version,
                        created_at=job.created_at,
                        inputs=records[start + offset],
                        output={**outputs[start + offset], "role": SHADOW},
                        latency_ms=per_row,
                    )
                )
            start += len(job.records)
        self.predlog.put(rows)
        self.metrics.shadow_predictions.labels(name, version).inc(len(rows))
        self.metrics.shadow_latency.labels(name, version).observe(seconds)

    def _conformed(self, job: ShadowJob, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The champion's conformed records, conformed again to the shadow's schema when the two differ."""
        if job.shadow.bundle.input_schema == job.champion.bundle.input_schema:
            return records
        rules = field_rules(job.shadow.bundle.input_schema, self.policy)
        return validate_records(records, rules, max_records=len(records), policy=self.policy).records

    def _log_error(self, shadow: LoadedModel, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._last_error >= _ERROR_LOG_EVERY:
            self._last_error = now
            log.warning(
                "shadow %s version %d failed (%s: %s); the champion's answers are unaffected",
                shadow.name,
                shadow.version,
                type(exc).__name__,
                str(exc)[:300],
            )

    def _drop_queued(self) -> None:
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                return
            if job is not None:
                self.metrics.shadow_dropped.labels(job.champion.name).inc()
