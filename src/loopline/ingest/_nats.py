"""``type: nats`` — JSON messages from a NATS JetStream stream through a durable pull consumer.

    - name: orders
      type: nats
      url: nats://127.0.0.1:4222          # user/token from password_env, never in the config
      stream: ORDERS
      subject: orders.>                   # filter subject of the consumer (optional)
      durable: loopline-orders            # the consumer's name: the server keeps its cursor
      schema: {order_id: int, amount: float, ts: timestamp}

Delivery: the durable pull consumer has ``ack_policy: explicit``; :meth:`NatsSource.ack` acknowledges each
message of a batch only after the engine committed it. A message not acknowledged within ``ack_wait_s``
(a crash between commit and ack, a slow commit) is redelivered; ``Batch.ids`` are the stream sequence
numbers, so the engine drops what it already holds. ``max_ack_pending`` bounds the unacknowledged messages
(and so a batch). A message delivered more than ``max_deliveries`` times becomes a reject ("poison") and is
acknowledged with the batch, so it no longer blocks the others. Without ``follow``, a consumer that starts
with unacknowledged messages (left by a crashed run) waits up to ``ack_wait_s`` for their redelivery
before it ends; keep ``ack_wait_s`` above the time a batch takes to commit.

Positions are ``{"stream_seq": N}``, the highest stream sequence committed; the server-side consumer is the
real cursor. When the durable consumer does not exist yet it is created at ``stream_seq + 1`` (or from the
start of the stream when there is no position). Publishers should set ``Nats-Msg-Id`` so that a publish
retried after a server restart is stored once (JetStream duplicate window).

Errors: ``subject``, ``stream`` and ``durable`` are checked when the pipeline is loaded. The client runs in an
event-loop thread; a permissions or authorization error the server reports there, an unexpected error in that
loop, or the thread found dead ends the ingest with a ``DataError`` in the main flow (:mod:`._client_threads`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Coroutine, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import Field, ValidationInfo, field_validator

from loopline.core.errors import DataError, MissingExtraError
from loopline.ingest._broker_names import nats_name, nats_subject
from loopline.ingest._client_threads import ThreadFaults
from loopline.ingest._payloads import BrokerConfig, dedup_ids, env_secret, mask_url, raw_text
from loopline.ingest._source import Batch, Limits, Reject, Source

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from nats.js.client import JetStreamContext

T = TypeVar("T")
log = logging.getLogger("loopline.ingest")


class NatsConfig(BrokerConfig):
    """Keys of ``type: nats``."""

    url: str = "nats://127.0.0.1:4222"
    stream: str = Field(min_length=1)
    subject: str | None = None
    durable: str = Field(min_length=1)
    user: str | None = None
    password_env: str | None = None
    token_env: str | None = None
    ack_wait_s: float = Field(default=60.0, gt=0)
    max_ack_pending: int = Field(default=100_000, ge=1)
    fetch_size: int = Field(default=1_000, ge=1)

    @field_validator("subject")
    @classmethod
    def _valid_subject(cls, subject: str | None) -> str | None:
        return None if subject is None else nats_subject(subject)

    @field_validator("stream", "durable")
    @classmethod
    def _valid_name(cls, name: str, info: ValidationInfo) -> str:
        return nats_name(name, "stream" if info.field_name == "stream" else "consumer")


class NatsSource(Source):
    """A JetStream durable pull consumer -> typed rows; explicit ack after commit."""

    type_name = "nats"
    streaming = True
    Config = NatsConfig
    config: NatsConfig

    def __init__(self, config: NatsConfig) -> None:
        super().__init__(config)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._nc: Client | None = None
        self._sub: JetStreamContext.PullSubscription | None = None
        self._faults = ThreadFaults("nats-py")

    def batches(self, position: Any, *, follow: bool = False, limits: Limits = Limits()) -> Iterator[Batch]:
        """Batches of the messages the durable consumer delivers (redeliveries included)."""
        parser = self.config.parser("nats")
        last = int(position["stream_seq"]) if isinstance(position, dict) and "stream_seq" in position else 0
        pending = self._run(self._subscribe(last))
        # messages a dead consumer left unacknowledged come back after ack_wait: without follow, wait for them
        wait_until = time.monotonic() + self.config.ack_wait_s + limits.max_seconds if pending else 0.0
        max_rows = max(1, min(limits.max_rows, self.config.max_ack_pending))
        while True:
            msgs = self._run(self._fetch(max_rows, limits.max_seconds))
            if not msgs and not follow:
                if time.monotonic() < wait_until:
                    continue
                return
            good: list[Msg] = []
            rejects: list[Reject] = []
            for msg in msgs:
                meta = msg.metadata
                if meta.num_delivered > self.config.max_deliveries:
                    reason = (
                        f"poison: delivered {meta.num_delivered} times (max_deliveries={self.config.max_deliveries})"
                    )
                    rejects.append(Reject(reason, self._where(msg), raw_text(msg.data)))
                else:
                    good.append(msg)
            rows, kept, bad = parser.parse([m.data for m in good], [self._where(m) for m in good])
            rejects.extend(bad)
            rows, kept, ids = dedup_ids(rows, kept, [str(good[i].metadata.sequence.stream) for i in kept])
            last = max([last, *(m.metadata.sequence.stream for m in msgs)])
            yield Batch(
                rows=rows,
                position={"stream_seq": last},
                ids=ids,
                rejects=rejects,
                ack_token=msgs,
                bytes_read=sum(len(m.data) for m in msgs),
            )

    def ack(self, batch: Batch) -> None:
        """Acknowledge every message of a committed batch (rejects included)."""
        if batch.ack_token:
            self._run(self._ack(batch.ack_token))

    def backlog(self) -> int | None:
        """The durable consumer's messages not yet delivered plus those awaiting an ack (its consumer info, one
        round trip); None before the consumer is bound."""
        if self._sub is None:
            return None
        return self._run(self._backlog(), timeout=10)

    def close(self) -> None:
        """Drain the connection and stop the event loop thread; unacknowledged messages come back."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if self._nc is not None:
            with contextlib.suppress(Exception):  # closing a broken connection (or after a fault) must not raise
                if thread.is_alive():
                    asyncio.run_coroutine_threadsafe(self._nc.close(), loop).result(10)
                else:  # the loop thread died: drive its loop from here to close the connection
                    loop.run_until_complete(asyncio.wait_for(self._nc.close(), 10))
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
        self._loop = self._thread = self._nc = self._sub = None

    # -- asyncio bridge ---------------------------------------------------------------------------

    def _run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` in the event loop thread; an error of that thread (or its death) is raised here."""
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            self._loop.set_exception_handler(self._on_loop_error)
            self._thread = threading.Thread(target=self._loop.run_forever, name="loopline-nats", daemon=True)
            self._thread.start()
            self._faults.watch(lambda: self._thread)
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return self._faults.result(future, timeout)

    def _on_loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """An error nobody awaited in the loop thread: connection trouble is logged (the client reconnects),
        anything else (a bug in the client library) ends the ingest."""
        loop.default_exception_handler(context)
        error = context.get("exception")
        if error is None or _connection_trouble(error):
            return
        self._faults.fail(
            f"{context.get('message', 'an error in the event loop')}: {type(error).__name__}: {error}",
            hint="The messages not committed come back on the next run; report this error if it repeats.",
            cause=error,
        )

    async def _on_error(self, error: Exception) -> None:
        """nats-py's error callback: a refusal by the server ends the ingest (fetching would wait forever)."""
        from nats.errors import AuthorizationError

        if isinstance(error, AuthorizationError) or "permissions violation" in str(error).lower():
            self._faults.fail(
                f"the server {mask_url(self.config.url)!r} refused: {error}.",
                hint="Grant this user what a JetStream pull consumer needs (publish to '$JS.API.>' and "
                "subscribe to '_INBOX.>'), or fix 'user' / 'password_env' / 'token_env'.",
            )
            return
        log.warning("nats source %r: %s: %s", mask_url(self.config.url), type(error).__name__, error)

    # -- coroutines -------------------------------------------------------------------------------

    async def _subscribe(self, last: int) -> int:
        """Bind the durable consumer (created if missing); the number of messages it awaits acks for."""
        if self._sub is not None:
            return 0
        try:
            import nats
            from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
            from nats.js.errors import NotFoundError
        except ImportError as exc:
            raise MissingExtraError("nats-py", "nats") from exc
        cfg = self.config
        try:
            self._nc = await nats.connect(
                servers=[cfg.url],
                user=cfg.user,
                password=env_secret(cfg.password_env, "password_env"),
                token=env_secret(cfg.token_env, "token_env"),
                max_reconnect_attempts=-1,
                reconnect_time_wait=0.2,
                connect_timeout=min(5.0, cfg.reconnect_timeout_s),
                allow_reconnect=True,
                error_cb=self._faults.guard("error_cb", self._on_error),
            )
        except Exception as exc:
            raise DataError(
                f"NATS server {mask_url(cfg.url)!r} is unreachable: {exc}.", hint="Start nats-server or fix 'url'."
            ) from exc
        js = self._nc.jetstream()
        try:
            await js.stream_info(cfg.stream)
        except NotFoundError:
            raise DataError(
                f"JetStream stream {cfg.stream!r} does not exist on {mask_url(cfg.url)!r}.",
                hint="Create it (nats stream add) or fix 'stream'.",
            ) from None
        start = {"deliver_policy": DeliverPolicy.BY_START_SEQUENCE, "opt_start_seq": last + 1} if last else {}
        consumer = ConsumerConfig(
            durable_name=cfg.durable,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=cfg.ack_wait_s,
            max_ack_pending=cfg.max_ack_pending,
            filter_subject=cfg.subject,
            **start,  # type: ignore[arg-type]
        )
        try:
            info = await js.consumer_info(cfg.stream, cfg.durable)
        except NotFoundError:
            info = await js.add_consumer(cfg.stream, consumer)
        self._sub = await js.pull_subscribe_bind(cfg.durable, stream=cfg.stream)
        return int(info.num_ack_pending or 0)

    async def _backlog(self) -> int:
        if self._nc is None:
            return 0
        info = await self._nc.jetstream().consumer_info(self.config.stream, self.config.durable)
        return int(info.num_pending or 0) + int(info.num_ack_pending or 0)

    async def _fetch(self, max_rows: int, max_seconds: float) -> list[Msg]:
        from nats.errors import ConnectionClosedError
        from nats.errors import TimeoutError as NatsTimeoutError

        if self._sub is None:
            raise RuntimeError("NatsSource._fetch before _subscribe")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max_seconds
        out: list[Msg] = []
        down_since: float | None = None
        while len(out) < max_rows:
            left = deadline - loop.time()
            if left <= 0.05:
                break
            size = min(self.config.fetch_size, max_rows - len(out))
            try:
                # wait_for: nats-py's own timeout has been seen not to fire while redeliveries are pending
                got = await asyncio.wait_for(self._sub.fetch(size, timeout=max(left, 0.1)), left + 1.0)
            except (TimeoutError, NatsTimeoutError):
                if self._nc is not None and not self._nc.is_connected:
                    down_since = self._check_down(down_since, loop.time())
                    await asyncio.sleep(min(0.2, max(0.0, deadline - loop.time())))
                continue
            except ConnectionClosedError as exc:
                raise DataError(f"NATS connection to {mask_url(self.config.url)!r} closed: {exc}.") from exc
            out.extend(got)
            if len(got) < self.config.fetch_size:
                break  # caught up: yield now rather than wait for the window to fill
        return out

    def _check_down(self, since: float | None, now: float) -> float:
        if since is None:
            return now
        if now - since > self.config.reconnect_timeout_s:
            raise DataError(
                f"NATS server {mask_url(self.config.url)!r} unreachable for {self.config.reconnect_timeout_s}s.",
                hint="Start nats-server, or raise 'reconnect_timeout_s'.",
            )
        return since

    async def _ack(self, msgs: list[Msg]) -> None:
        for msg in msgs:
            try:
                await msg.ack()
            except Exception:  # connection lost: the message is redelivered and dropped by id
                return
        if self._nc is not None and self._nc.is_connected:
            await self._nc.flush(timeout=10)

    @staticmethod
    def _where(msg: Msg) -> dict[str, Any]:
        meta = msg.metadata
        return {"stream": meta.stream, "subject": msg.subject, "stream_seq": meta.sequence.stream}


def _connection_trouble(error: BaseException) -> bool:
    """Errors a reconnect cures (the client retries them on its own)."""
    from nats.errors import Error as NatsError

    return isinstance(error, OSError | TimeoutError | asyncio.CancelledError | NatsError)
