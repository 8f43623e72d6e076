"""Shared JSON payload parsing of the broker sources: typed columns, rejects with positions."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest

from loopline.core.errors import MissingExtraError
from loopline.ingest._payloads import BrokerConfig, PayloadParser, mask_url
from loopline.ingest._source import SOURCES

SCHEMA = {"device": "string", "seq": "int", "v": "float", "ok": "bool", "ts": "timestamp"}


def parse(payloads: list[bytes], limit: int = 200) -> tuple[pl.DataFrame, list[int], dict[int, str]]:
    parser = PayloadParser(SCHEMA, max_payload_bytes=limit, source="test")
    rows, kept, rejects = parser.parse(payloads, list(range(len(payloads))))
    return rows, kept, {r.position: r.reason for r in rejects}


def test_a_batch_becomes_typed_rows() -> None:
    rows, kept, rejects = parse(
        [
            b'{"device":"a","seq":1,"v":1,"ok":true,"ts":"2024-01-01T00:00:00Z","extra":1}',
            b'{"device":"b","seq":2,"v":2.5,"ok":false,"ts":"2024-01-01 02:00:00+02:00"}',
            b'{"seq":3,"ts":1704067200}',
            b'{\n  "seq": 4\n}',
        ]
    )
    assert rejects == {} and kept == [0, 1, 2, 3]
    expected = {"device": pl.String(), "seq": pl.Int64(), "v": pl.Float64(), "ok": pl.Boolean()}
    assert rows.schema == pl.Schema({**expected, "ts": pl.Datetime("us", "UTC")})
    assert rows["seq"].to_list() == [1, 2, 3, 4]
    assert rows["ts"].to_list()[:3] == [datetime(2024, 1, 1, tzinfo=UTC)] * 3


def test_bad_payloads_become_rejects_and_the_others_stay() -> None:
    rows, kept, rejects = parse(
        [b'{"seq":1}', b"nope", b'{"seq":"x"}', b"", b"x" * 300, b"[1]", b'{"ts":"soon"}', b"\xff", b'{"seq":2}']
    )
    assert kept == [0, 8] and rows["seq"].to_list() == [1, 2]
    assert rejects[1].startswith("invalid JSON")
    assert rejects[2] == "column 'seq': expected int, got str \"x\""
    assert rejects[3] == "empty payload"
    assert "exceeds max_payload_bytes=200" in rejects[4]
    assert "not an object" in rejects[5]
    assert "column 'ts'" in rejects[6]
    assert rejects[7].startswith("invalid JSON")


def test_an_empty_batch_keeps_the_schema() -> None:
    rows, _, rejects = parse([])
    assert rows.height == 0 and rows.schema["ts"] == pl.Datetime("us", "UTC") and not rejects


def test_config_needs_a_schema_and_masks_passwords() -> None:
    with pytest.raises(ValueError, match="schema"):
        BrokerConfig.model_validate({})
    with pytest.raises(ValueError, match="decimal"):
        BrokerConfig.model_validate({"schema": {"a": "decimal"}})
    assert mask_url("redis://u:secret@h:1/0") == "redis://u:***@h:1/0"


def test_the_three_brokers_are_registered() -> None:
    import loopline.ingest._broker_sources  # noqa: F401

    assert {"mqtt", "nats", "redis"} <= set(SOURCES.names())


def test_a_missing_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from loopline.ingest._mqtt import MqttConfig, MqttSource

    monkeypatch.setitem(sys.modules, "paho.mqtt.client", None)
    source = MqttSource(MqttConfig.model_validate({"topics": ["x"], "client_id": "c", "schema": {"a": "int"}}))
    with pytest.raises(MissingExtraError, match=r"loopline\[mqtt\]"):
        next(source.batches(None))
