"""The names brokers accept, checked when a pipeline is loaded instead of failing in a client thread.

- MQTT topic filters (MQTT 5.0 §4.7, §1.5.4): non-empty, at most 65,535 bytes of UTF-8, no U+0000; ``#``
  only as the whole last level, ``+`` only as a whole level; ``$share/<name>/<filter>`` with a name free
  of ``/``, ``+`` and ``#``. Control characters (U+0001-U+001F, U+007F-U+009F) are refused too: the spec
  says a filter SHOULD NOT hold them and Mosquitto drops a client that sends one.
- NATS subjects: tokens separated by ``.``, none empty, no whitespace or control characters; ``*`` only as a
  whole token, ``>`` only as the whole last one. Stream and consumer names: no whitespace, ``.``, ``*``,
  ``>``, ``/``, ``\\`` or control characters.
- Redis keys (stream names) are binary-safe: any non-empty string is valid.

Each check returns the value or raises ``ValueError`` whose message says what is wrong and the fix; pydantic
turns it into the pipeline's ``ConfigError`` naming the key and line.
"""

from __future__ import annotations

import re

MAX_MQTT_BYTES = 65_535
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_WHITESPACE = re.compile(r"\s")


def mqtt_topic_filter(value: str) -> str:
    """``value`` if it is a valid MQTT topic filter, else ValueError."""
    if not value:
        raise ValueError("an MQTT topic filter cannot be empty. Name a topic, e.g. 'plant/+/telemetry'.")
    _utf8_text(value, "MQTT topic filter")
    levels = value.split("/")
    if value.startswith("$share/"):
        if len(levels) < 3 or not levels[1] or any(c in levels[1] for c in "+#"):
            raise ValueError(
                f"shared subscription {value!r} is not '$share/<group>/<filter>'. "
                "Give a group name without '+' or '#' and a filter after it, e.g. '$share/loopline/plant/#'."
            )
        return "/".join(levels[:2]) + "/" + mqtt_topic_filter("/".join(levels[2:]))
    for index, level in enumerate(levels):
        if "#" in level and (level != "#" or index != len(levels) - 1):
            raise ValueError(
                f"MQTT topic filter {value!r}: '#' must be a whole level and the last one. "
                "Write e.g. 'a/#' (everything under a), or use '+' for one level: 'a/+/b'."
            )
        if "+" in level and level != "+":
            raise ValueError(
                f"MQTT topic filter {value!r}: '+' must be a whole level (level {level!r}). "
                "Write e.g. 'a/+/c', or spell the level out without '+'."
            )
    return value


def mqtt_client_id(value: str) -> str:
    """``value`` if MQTT accepts it as a client identifier (UTF-8, at most 65,535 bytes, no control chars)."""
    _utf8_text(value, "MQTT client_id")
    return value


def nats_subject(value: str) -> str:
    """``value`` if it is a valid NATS subject (filter), else ValueError."""
    _no_blank_or_control(value, "NATS subject")
    tokens = value.split(".")
    for index, token in enumerate(tokens):
        if not token:
            raise ValueError(
                f"NATS subject {value!r} has an empty token (a leading, trailing or doubled '.'). "
                "Write tokens separated by single dots, e.g. 'orders.eu.>'."
            )
        if ">" in token and (token != ">" or index != len(tokens) - 1):
            raise ValueError(f"NATS subject {value!r}: '>' must be a whole token and the last one, e.g. 'orders.>'.")
        if "*" in token and token != "*":
            raise ValueError(f"NATS subject {value!r}: '*' must be a whole token, e.g. 'orders.*.created'.")
    return value


def nats_name(value: str, what: str) -> str:
    """``value`` if NATS accepts it as a stream or consumer name (``what`` says which), else ValueError."""
    _no_blank_or_control(value, f"NATS {what} name")
    bad = sorted({c for c in value if c in ".*>/\\"})
    if bad:
        raise ValueError(
            f"NATS {what} name {value!r} holds {' '.join(repr(c) for c in bad)}: a {what} name cannot hold "
            "'.', '*', '>', '/' or '\\'. Use letters, digits, '-' and '_'."
        )
    return value


def _utf8_text(value: str, what: str) -> None:
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise ValueError(f"{what} {value!r} is not valid UTF-8 (a lone surrogate). Remove it.") from None
    if size > MAX_MQTT_BYTES:
        raise ValueError(f"{what} is {size} bytes of UTF-8; MQTT allows {MAX_MQTT_BYTES}. Shorten it.")
    found = _CONTROL.search(value)
    if found:
        raise ValueError(
            f"{what} {value!r} holds the control character {found.group()!r} "
            f"at {found.start()}; brokers refuse it (U+0000 always). Remove it."
        )


def _no_blank_or_control(value: str, what: str) -> None:
    found = _WHITESPACE.search(value) or _CONTROL.search(value)
    if found:
        raise ValueError(
            f"{what} {value!r} holds {found.group()!r} at {found.start()}: whitespace and control characters "
            "are not allowed. Remove it."
        )
