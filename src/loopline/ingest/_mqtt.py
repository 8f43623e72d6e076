"""``type: mqtt`` — JSON messages from an MQTT broker (paho-mqtt 2.x, MQTT 5), acknowledged after commit.

    - name: sensors
      type: mqtt
      url: mqtt://127.0.0.1:1883          # no password here: username + password_env
      topics: ["plant/+/telemetry", "plant/#"]
      client_id: loopline-sensors          # stable: the broker keeps the session under this id
      schema: {device: string, seq: int, value: float, ts: timestamp}
      id_fields: [device, seq]             # message id for deduplication of redeliveries
      sequence_field: seq                  # gap counting (optional), per device_field
      device_field: device
      state_dir: /var/lib/loopline/mqtt     # delivery counts (poison bound); default $LOOPLINE_HOME/mqtt

How nothing is lost: the client connects with MQTT 5 ``clean_start=False`` and a session expiry
(``session_expiry_s``), so the broker keeps the subscriptions and queues QoS 1 messages while the consumer is
down; it subscribes at QoS 1 with ``manual_ack=True`` and sends the PUBACK of a message only in :meth:`ack`,
which the engine calls after the batch is committed. A message received but not acknowledged is redelivered by
the broker on the next connection (MQTT never redelivers within a connection). ``receive_maximum`` (MQTT 5
Receive Maximum, up to 65535) bounds the unacknowledged messages the broker sends, hence the batch size.
After a reconnect, acknowledgements of the old connection are skipped (packet ids are reused per
connection): those messages come back and are dropped by id.

Deduplication: MQTT messages carry no stable id. With ``id_fields`` the values of those payload fields form
``Batch.ids`` (e.g. ``device|seq``) and the engine drops redelivered rows; a row with a null id field is
rejected. **Without ``id_fields`` deduplication is unavailable**: a redelivery after a crash between commit and
ack is stored twice.

Gaps: with ``sequence_field`` (and optionally ``device_field``), :meth:`MqttSource.gaps` counts the sequence
numbers skipped per device (a jump from 4 to 7 counts 2; repeats and late arrivals count nothing). The count
and the last sequence per device travel in the position, so they survive restarts.

Poison messages: a message handed to the engine more than ``max_deliveries`` times without being acknowledged
(it crashed the consumer each time, before the commit) becomes a reject, "poison: delivered N times", and is
acknowledged with its batch, like with NATS and Redis. MQTT 5 flags a redelivery (DUP) but counts nothing, so
the source counts: in ``<state_dir>/<client_id>.sqlite`` (``state_dir`` defaults to ``$LOOPLINE_HOME/mqtt``,
else ``./.loopline/mqtt``; keep it on a local disk that outlives the process) it raises a message's count,
and fsyncs it, *before* handing the message over, and drops the count once the message is acknowledged. The
file thus holds only unacknowledged messages; it is emptied when the broker reports a new session (nothing
will be redelivered) and deleted on close when empty. A message is known by a hash of its topic and payload,
which a redelivery repeats byte for byte. Redelivered messages are handed in groups that shrink with each
delivery, down to one message on the last allowed delivery: only a message that crashed the consumer on its
own becomes poison, and the messages that came with it are ingested. A bad payload is rejected (and
acknowledged) on its first delivery anyway.

Mosquitto settings for zero loss (``mosquitto.conf``)::

    persistence true                  # sessions and queued messages survive a broker restart
    persistence_location /var/lib/mosquitto/
    autosave_interval 1               # or autosave_on_changes true: bound what a broker crash loses
    max_queued_messages 0             # default 1000: messages beyond it are DROPPED for a slow/offline client
    max_queued_bytes 0                # (0 = no limit; size the disk/memory instead)
    max_inflight_messages 0           # MQTT 3 clients; MQTT 5 clients get receive_maximum from loopline
    persistent_client_expiration 7d   # how long an offline session is kept (MQTT 3; MQTT 5 uses session expiry)
    queue_qos0_messages false         # QoS 0 is never guaranteed: publish at QoS 1

Publishers must use QoS 1 and retry until PUBACK; the consumer's ``client_id`` must be stable and unique.

Errors: ``topics`` and ``client_id`` are checked when the pipeline is loaded (:mod:`._broker_names`). paho runs
the callbacks in its network thread; an error there, a SUBACK that refuses a filter or grants QoS 0, a CONNACK
refusing the credentials or the client id, or paho's thread found dead ends the ingest with a ``DataError``
raised in the main flow (:mod:`._client_threads`); the messages not committed come back on the next run.
"""

from __future__ import annotations

import hashlib
import queue
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlsplit

import polars as pl
from pydantic import AfterValidator, Field

from loopline.core.errors import ConfigError, DataError, MissingExtraError
from loopline.core.settings import Settings
from loopline.ingest._broker_names import mqtt_client_id, mqtt_topic_filter
from loopline.ingest._client_threads import ThreadFaults
from loopline.ingest._deliveries import DeliveryCounts
from loopline.ingest._payloads import BrokerConfig, PayloadParser, dedup_ids, env_secret, mask_url, raw_text
from loopline.ingest._source import Batch, Limits, Reject, Source

if TYPE_CHECKING:
    from paho.mqtt.client import Client, MQTTMessage


class MqttConfig(BrokerConfig):
    """Keys of ``type: mqtt``."""

    url: str = "mqtt://127.0.0.1:1883"
    topics: list[Annotated[str, AfterValidator(mqtt_topic_filter)]] = Field(min_length=1)
    client_id: Annotated[str, Field(min_length=1), AfterValidator(mqtt_client_id)]
    username: str | None = None
    password_env: str | None = None
    session_expiry_s: int = Field(default=7 * 86_400, ge=1)
    receive_maximum: int = Field(default=65_535, ge=1, le=65_535)
    keepalive_s: int = Field(default=30, ge=5)
    id_fields: list[str] | None = None
    sequence_field: str | None = None
    device_field: str | None = None
    state_dir: str | None = None


# (connection epoch, topic, payload, packet id, delivery-count key)
_Message = tuple[int, str, bytes, int, str]


class MqttSource(Source):
    """MQTT topics -> typed rows; persistent session, QoS 1, PUBACK after commit."""

    type_name = "mqtt"
    streaming = True
    Config = MqttConfig
    config: MqttConfig

    def __init__(self, config: MqttConfig) -> None:
        super().__init__(config)
        self._client: Client | None = None
        self._inbox: queue.SimpleQueue[_Message] = queue.SimpleQueue()
        self._epoch = 0
        self._connected = threading.Event()
        self._disconnected = threading.Event()
        self._unsubacked = threading.Event()
        self._down_since: float | None = None
        self._connect_error: str | None = None
        self._gaps = 0
        self._last_seq: dict[str, int] = {}
        self._received = 0
        self._counts: DeliveryCounts | None = None
        self._new_session = threading.Event()
        self._faults = ThreadFaults("paho-mqtt")
        self._ready = threading.Event()  # connected, and the broker granted every subscription
        self._sub_mid: int | None = None

    def gaps(self) -> int:
        """Sequence numbers skipped so far (``sequence_field``), over all devices; 0 without it."""
        return self._gaps

    def last_sequences(self) -> dict[str, int]:
        """The last sequence number seen per device (``device_field``; ``""`` without it)."""
        return dict(self._last_seq)

    def batches(self, position: Any, *, follow: bool = False, limits: Limits = Limits()) -> Iterator[Batch]:
        """Batches of the messages the broker delivers (queued ones first), see the module docstring."""
        cfg = self.config
        self._check_fields()
        parser = cfg.parser("mqtt")
        state = dict(position) if isinstance(position, dict) else {}
        self._received = int(state.get("received", 0))
        self._gaps = int(state.get("gaps", 0))
        self._last_seq = {str(k): int(v) for k, v in dict(state.get("last_seq", {})).items()}
        self._ensure_connected()
        self._deliveries()  # an unwritable state_dir fails here, before any message is handed over
        max_rows = max(1, min(limits.max_rows, cfg.receive_maximum))
        while True:
            messages = self._collect(max_rows, limits.max_seconds)
            if not messages and not follow:
                return
            if not messages:
                yield self._batch([], parser)
            for group in self._handoffs(messages, max_rows):
                yield self._batch(group, parser)

    def ack(self, batch: Batch) -> None:
        """PUBACK every message of a committed batch (those of an older connection come back instead),
        then drop their delivery counts."""
        client = self._client
        if client is None or not batch.ack_token:
            return
        for epoch, mid, _ in batch.ack_token:
            if epoch == self._epoch:
                client.ack(mid, 1)
        self._flush(client)
        self._deliveries().forget(key for *_, key in batch.ack_token)

    def _flush(self, client: Client, timeout: float = 10.0) -> None:
        """Wait until paho's network thread has written the queued packets (PUBACKs) to the socket.

        paho can close the socket on ``disconnect()`` with packets still queued; waiting here makes
        ``ack`` mean "sent" and keeps ``close`` from losing acknowledgements.
        """
        pending = getattr(client, "_out_packet", None)
        deadline = time.monotonic() + timeout
        while pending and self._connected.is_set() and time.monotonic() < deadline:
            time.sleep(0.001)

    def close(self) -> None:
        """Disconnect; the broker keeps the session and the unacknowledged messages."""
        client, self._client = self._client, None
        self._faults.watch(None)
        if client is not None:
            # DISCONNECT is queued behind the PUBACKs: wait until it is written, or they are lost
            self._round_trip(client)
            self._disconnected.clear()
            if client.disconnect() == 0:
                self._disconnected.wait(10)
            client.loop_stop()
        self._connected.clear()
        counts, self._counts = self._counts, None
        if counts is not None:
            counts.close()

    def _round_trip(self, client: Client, timeout: float = 10.0) -> None:
        """UNSUBSCRIBE a dummy filter and wait for UNSUBACK: the broker has then processed every PUBACK before it.

        Closing the socket right after writing can reset the connection and drop the last PUBACKs.
        """
        if not self._connected.is_set():
            return
        self._unsubacked.clear()
        rc, _ = client.unsubscribe(f"$loopline/flush/{self.config.client_id}")
        if rc == 0:
            self._unsubacked.wait(timeout)

    # -- connection -------------------------------------------------------------------------------

    def _check_fields(self) -> None:
        cfg = self.config
        for key in ("id_fields", "sequence_field", "device_field"):
            value = getattr(cfg, key)
            names = value if isinstance(value, list) else [value] if value else []
            missing = [n for n in names if n not in cfg.schema_]
            if missing:
                raise ConfigError(
                    f"mqtt {key} {missing} are not columns of 'schema'.", key=key, hint="Add them to 'schema'."
                )

    def _ensure_connected(self) -> None:
        if self._client is None:
            self._client = self._connect()
        self._wait_connected()

    def _connect(self) -> Client:
        try:
            import paho.mqtt.client as mqtt
            from paho.mqtt.enums import CallbackAPIVersion
            from paho.mqtt.packettypes import PacketTypes
            from paho.mqtt.properties import Properties
        except ImportError as exc:
            raise MissingExtraError("paho-mqtt", "mqtt") from exc
        cfg = self.config
        parts = urlsplit(cfg.url)
        if parts.scheme not in ("mqtt", "tcp", "mqtts", "ssl") or not parts.hostname:
            raise ConfigError(
                f"mqtt url {mask_url(cfg.url)!r} is not mqtt://host:port.", key="url", hint="e.g. mqtt://127.0.0.1:1883"
            )
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=cfg.client_id, protocol=mqtt.MQTTv5, manual_ack=True
        )
        if parts.scheme in ("mqtts", "ssl"):
            client.tls_set()
        if cfg.username:
            client.username_pw_set(cfg.username, env_secret(cfg.password_env, "password_env"))
        client.reconnect_delay_set(0.1, 2)  # type: ignore[arg-type]  # floats work
        # paho runs these in its network thread: an error there is raised again in the main flow (_faults)
        guard = self._faults.guard
        client.on_connect = guard("on_connect", self._on_connect)
        client.on_disconnect = guard("on_disconnect", self._on_disconnect)
        client.on_message = guard("on_message", self._on_message)
        client.on_subscribe = guard("on_subscribe", self._on_subscribe)
        client.on_unsubscribe = guard("on_unsubscribe", lambda *args: self._unsubacked.set())
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = cfg.session_expiry_s
        props.ReceiveMaximum = cfg.receive_maximum
        self._down_since = time.monotonic()
        try:
            client.connect(parts.hostname, parts.port or 1883, cfg.keepalive_s, clean_start=False, properties=props)
        except OSError as exc:
            raise DataError(
                f"mqtt broker {mask_url(cfg.url)!r} is unreachable: {exc}.", hint="Start the broker or fix 'url'."
            ) from exc
        client.loop_start()
        thread = getattr(client, "_thread", None)  # paho clears the attribute when the thread ends: keep it
        self._faults.watch(lambda: thread)  # the watchdog: paho's network thread must live until close()
        return client

    def _wait_connected(self) -> None:
        since = self._down_since
        if self._ready.is_set() or since is None:
            self._faults.check()
            return
        left = self.config.reconnect_timeout_s - (time.monotonic() - since)
        if not self._faults.wait(self._ready, max(0.0, left)):
            reason = f": {self._connect_error}" if self._connect_error else ""
            raise DataError(
                f"mqtt broker {mask_url(self.config.url)!r} unreachable for "
                f"{self.config.reconnect_timeout_s}s{reason}.",
                hint="Start the broker, or raise 'reconnect_timeout_s'.",
            )

    def _on_connect(self, client: Client, userdata: object, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            self._connect_error = str(reason)
            if reason.value in _REFUSED:  # reconnecting cannot cure these
                self._faults.fail(
                    f"the broker {mask_url(self.config.url)!r} refused the connection: {reason}.",
                    hint=_REFUSED[reason.value],
                )
            return
        if not flags.session_present:
            self._new_session.set()  # the broker holds nothing of ours: no message will come back
        from paho.mqtt.subscribeoptions import SubscribeOptions

        self._epoch += 1
        # retainHandling=1: retained messages only for a new subscription, not on every reconnect
        options = SubscribeOptions(qos=1, retainHandling=1)
        self._sub_mid = client.subscribe([(topic, options) for topic in self.config.topics])[1]
        self._connected.set()

    def _on_subscribe(self, client: Client, userdata: object, mid: int, codes: list[Any], properties: Any) -> None:
        """The SUBACK: every filter must be granted QoS 1 (or 2), else the ingest fails with the broker's reason."""
        if mid != self._sub_mid:
            return
        for topic, code in zip(self.config.topics, codes, strict=False):
            if code.is_failure or code.value < 1:
                what = f"refused the subscription to {topic!r}: {code}" if code.is_failure else "granted QoS 0"
                self._faults.fail(
                    f"the broker {mask_url(self.config.url)!r} {what}.",
                    hint="Fix 'topics', or allow this client to subscribe to it in the broker's ACL (and a QoS "
                    "of 1: 'max_qos')."
                    if code.is_failure
                    else "Allow QoS 1 on the broker ('max_qos 1' or more).",
                )
                return
        self._down_since = None
        self._ready.set()

    def _on_disconnect(self, client: Client, userdata: object, flags: Any, reason: Any, properties: Any) -> None:
        if self._connected.is_set() and not self._ready.is_set():
            self._connect_error = f"the broker closed the connection before granting the subscription ({reason})"
        self._ready.clear()
        self._connected.clear()
        if self._down_since is None:
            self._down_since = time.monotonic()
        self._disconnected.set()

    def _on_message(self, client: Client, userdata: object, message: MQTTMessage) -> None:
        payload = bytes(message.payload)
        self._inbox.put((self._epoch, message.topic, payload, message.mid, _message_key(message.topic, payload)))

    def _collect(self, max_rows: int, max_seconds: float) -> list[_Message]:
        """Up to ``max_rows`` messages, waiting at most ``max_seconds``."""
        out: list[_Message] = []
        deadline = time.monotonic() + max_seconds
        while len(out) < max_rows:
            self._faults.check()
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                out.append(self._inbox.get(timeout=min(left, 0.5)))
            except queue.Empty:
                self._wait_connected()
                continue
            while len(out) < max_rows:
                try:
                    out.append(self._inbox.get_nowait())
                except queue.Empty:
                    break
        return out

    # -- hand-off: delivery counts, poison, rows ---------------------------------------------------

    def _deliveries(self) -> DeliveryCounts:
        """The delivery counts (emptied first when the broker started a new session)."""
        if self._counts is None:
            self._counts = DeliveryCounts(self._state_file())
        if self._new_session.is_set():
            self._new_session.clear()
            self._counts.forget_all()
        return self._counts

    def _state_file(self) -> Path:
        folder = Path(self.config.state_dir) if self.config.state_dir else Settings.from_env().home / "mqtt"
        return folder / f"{_file_name(self.config.client_id)}.sqlite"

    def _handoffs(self, messages: list[_Message], max_rows: int) -> Iterator[list[_Message]]:
        """The messages in hand-off groups, in order: first deliveries up to ``max_rows`` together, redeliveries
        in groups that shrink with each delivery (see :func:`_group_rows`). Counts are read as each group forms,
        after the previous group was acknowledged."""
        group: list[_Message] = []
        size = 0
        counts = self._deliveries()
        for message in messages:
            delivery = counts.count(message[4]) + 1
            limit = _group_rows(delivery, max_rows, self.config.max_deliveries)
            if group and (limit != size or len(group) >= size):
                yield group
                group = []
                counts = self._deliveries()
            group.append(message)
            size = limit
        if group:
            yield group

    def _batch(self, messages: list[_Message], parser: PayloadParser) -> Batch:
        """Count the hand-off of ``messages`` durably, then turn them into rows and rejects (poison included)."""
        cfg = self.config
        counts = self._deliveries().record(m[4] for m in messages)
        positions = [{"topic": m[1], "received": self._received + i + 1, "mid": m[3]} for i, m in enumerate(messages)]
        self._received += len(messages)
        rejects: list[Reject] = []
        healthy: list[int] = []
        for index, message in enumerate(messages):
            delivered = counts[message[4]]
            if delivered > cfg.max_deliveries:
                reason = f"poison: delivered {delivered} times (max_deliveries={cfg.max_deliveries})"
                rejects.append(Reject(reason, positions[index], raw_text(message[2])))
            else:
                healthy.append(index)
        rows, kept, bad = parser.parse([messages[i][2] for i in healthy], [positions[i] for i in healthy])
        kept = [healthy[i] for i in kept]
        rejects.extend(bad)
        ids: list[str] | None = None
        if cfg.id_fields:
            rows, kept, ids = self._ids(rows, kept, positions, messages, rejects)
        self._count_gaps(rows)
        return Batch(
            rows=rows,
            position=self._position(self._received),
            ids=ids,
            rejects=rejects,
            ack_token=[(m[0], m[3], m[4]) for m in messages],
            bytes_read=sum(len(m[2]) for m in messages),
        )

    # -- ids and gaps -----------------------------------------------------------------------------

    def _ids(
        self,
        rows: pl.DataFrame,
        kept: list[int],
        positions: list[Any],
        messages: list[_Message],
        rejects: list[Reject],
    ) -> tuple[pl.DataFrame, list[int], list[str]]:
        fields = self.config.id_fields or []
        null = rows.select(pl.any_horizontal(pl.col(f).is_null() for f in fields)).to_series()
        if null.any():
            for row in null.arg_true().to_list():
                index = kept[row]
                reason = f"id field(s) {fields} null in payload (topic {messages[index][1]!r})"
                rejects.append(Reject(reason, positions[index], messages[index][2].decode("utf-8", "replace")))
            keep = ~null
            kept = [k for k, flag in zip(kept, keep.to_list(), strict=True) if flag]
            rows = rows.filter(keep)
        ids = rows.select(pl.concat_str([pl.col(f).cast(pl.String) for f in fields], separator="|")).to_series()
        rows, kept, id_list = dedup_ids(rows, kept, ids.to_list())
        return rows, kept, id_list

    def _count_gaps(self, rows: pl.DataFrame) -> None:
        seq_field, device_field = self.config.sequence_field, self.config.device_field
        if not seq_field or rows.height == 0:
            return
        device = pl.col(device_field).cast(pl.String).fill_null("") if device_field else pl.lit("")
        groups = (
            rows.select(device.alias("device"), pl.col(seq_field).alias("seq"))
            .drop_nulls("seq")
            .group_by("device", maintain_order=True)
            .agg(pl.col("seq").unique().sort())
        )
        for name, seqs in groups.iter_rows():
            last = self._last_seq.get(name)
            newer = [s for s in seqs if last is None or s > last]
            if not newer:
                continue
            start = newer[0] if last is None else last + 1
            self._gaps += newer[-1] - start + 1 - len(newer)
            self._last_seq[name] = newer[-1]

    def _position(self, received: int) -> dict[str, Any]:
        position: dict[str, Any] = {"received": received}
        if self.config.sequence_field:
            position["gaps"] = self._gaps
            position["last_seq"] = dict(self._last_seq)
        return position


#: CONNACK reason codes that reconnecting cannot cure, with their fix
_REFUSED = {
    0x85: "Give a 'client_id' the broker accepts (letters and digits are safe).",
    0x86: "Fix 'username' and the password in the variable 'password_env' names.",
    0x87: "Allow this user (or anonymous clients) on the broker, or fix 'username' / 'password_env'.",
    0x8C: "Configure the authentication method the broker expects.",
}


def _group_rows(delivery: int, max_rows: int, max_deliveries: int) -> int:
    """How many messages on their ``delivery``-th delivery are handed together: ``max_rows`` on the first,
    shrinking geometrically to one on the last allowed one (``max_deliveries``). A message that crashes the
    consumer every time is then alone when it reaches the bound, and the messages that came with it are not
    taken for poison; an ordinary crash costs one pass of smaller batches."""
    if delivery <= 1:
        return max_rows
    if delivery >= max_deliveries:
        return 1
    return max(1, int(max_rows ** ((max_deliveries - delivery) / (max_deliveries - 1))))


def _message_key(topic: str, payload: bytes) -> str:
    """What a broker redelivery repeats byte for byte: the topic and the payload."""
    digest = hashlib.blake2b(topic.encode(), digest_size=16)
    digest.update(b"\0")
    digest.update(payload)
    return digest.hexdigest()


def _file_name(client_id: str) -> str:
    """``client_id`` as a file name (unchanged when it already is a safe one)."""
    if re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9._-]*", client_id):
        return client_id
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", client_id).lstrip(".")
    return f"{safe}-{hashlib.blake2b(client_id.encode(), digest_size=4).hexdigest()}"
