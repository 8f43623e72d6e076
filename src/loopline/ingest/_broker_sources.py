"""Message-broker sources: ``mqtt`` (paho-mqtt), ``nats`` (JetStream) and ``redis`` (Streams).

Importing this module registers the three in :data:`loopline.ingest._source.SOURCES`; each driver is
imported only when a source connects (a missing one raises ``MissingExtraError`` naming the extra). The
shared JSON payload handling lives in :mod:`loopline.ingest._payloads`; see each module's docstring for
its config keys and its acknowledgement and deduplication guarantees.
"""

from __future__ import annotations

from loopline.ingest._mqtt import MqttConfig, MqttSource
from loopline.ingest._nats import NatsConfig, NatsSource
from loopline.ingest._redis import RedisConfig, RedisSource

__all__ = ["MqttConfig", "MqttSource", "NatsConfig", "NatsSource", "RedisConfig", "RedisSource"]
