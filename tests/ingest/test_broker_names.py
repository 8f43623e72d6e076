"""Broker names checked at pipeline load: MQTT topic filters, NATS subjects and names."""

from __future__ import annotations

from pathlib import Path

import pytest

from loopline import ConfigError
from loopline.core.yamlfile import load_pipeline
from loopline.ingest._broker_names import mqtt_client_id, mqtt_topic_filter, nats_name, nats_subject


@pytest.mark.parametrize(
    "value", ["a", "a/b/c", "#", "+", "a/#", "+/+/#", "/", "a//b", "/a", "$SYS/#", "$share/g/a/+/#", "é/ü", "a" * 65535]
)
def test_valid_mqtt_topic_filters_pass(value: str) -> None:
    assert mqtt_topic_filter(value) == value


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("a/#/b", "'#' must be a whole level and the last one"),
        ("a#", "'#' must be a whole level"),
        ("a/b+/c", r"'\+' must be a whole level \(level 'b\+'\)"),
        ("+a", r"'\+' must be a whole level"),
        ("", "cannot be empty"),
        ("a" * 65536, "65536 bytes of UTF-8; MQTT allows 65535"),
        ("é" * 32768, "65536 bytes"),
        ("a/\x00/b", "control character '\\\\x00'"),
        ("a/\x1f", "control character"),
        ("a/\ud800", "lone surrogate"),
        ("$share/g", r"not '\$share/<group>/<filter>'"),
        ("$share//a", r"not '\$share/<group>/<filter>'"),
        ("$share/g+/a", r"not '\$share/<group>/<filter>'"),
        ("$share/g/a/#/b", "'#' must be a whole level"),
    ],
)
def test_invalid_mqtt_topic_filters_say_why_and_how_to_fix(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        mqtt_topic_filter(value)


def test_client_id_nats_subject_and_names() -> None:
    assert mqtt_client_id("loopline-1") == "loopline-1"
    with pytest.raises(ValueError, match="control character"):
        mqtt_client_id("a\x00b")
    assert nats_subject("orders.*.>") == "orders.*.>"
    assert nats_subject(">") == ">"
    for bad in ("", ".a", "a.", "a..b", "a.>.b", "a.b>", "a.*b", "a\tb"):
        with pytest.raises(ValueError, match="NATS subject"):
            nats_subject(bad)
    assert nats_name("ORDERS_eu-1", "stream") == "ORDERS_eu-1"
    for bad in ("a.b", "a*", "a>", "a/b", "a\\b", "a b"):
        with pytest.raises(ValueError, match="NATS stream name"):
            nats_name(bad, "stream")


PIPELINE = """\
name: sensors
steps:
  readings:
    type: ingest
    source:
      type: mqtt
      topics: ["plant/+/telemetry", {topic}]
      client_id: loopline-readings
      schema: {{device: string}}
"""


@pytest.mark.parametrize(
    ("topic", "message"),
    [("'a/#/b'", "'#' must be a whole level"), ("'a/b+/c'", r"'\+' must be a whole level"), ("''", "empty")],
)
def test_a_pipeline_with_an_invalid_filter_is_refused_at_load_naming_the_key(
    tmp_path: Path, topic: str, message: str
) -> None:
    path = tmp_path / "pipeline.yaml"
    path.write_text(PIPELINE.format(topic=topic))
    with pytest.raises(ConfigError, match=message) as info:
        load_pipeline(path)
    assert "topics.1" in str(info.value) and str(path) in str(info.value)
