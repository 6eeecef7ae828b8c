"""Publishing alerts to Kafka, where a broker is configured (``SKYVAULT_ALERTS_KAFKA``: the
bootstrap servers, e.g. ``broker1:9092,broker2:9092``), with Confluent's maintained client
(confluent-kafka, librdkafka; ``pip install -e '.[kafka]'``).

One topic per night and stream, named as ZTF's: ``ztf_<YYYYMMDD>_programid1`` for the public
stream, ``ztf_<YYYYMMDD>_programid<N>`` for program N's. Each message is one alert as an
Avro object container file with its schema (the bytes of ``<candid>.avro`` in the archive,
which is what ZTF's brokers receive), keyed by candid.

No broker is installed here (none is packaged on the registries this project installs from):
the producer is not exercised by the tests, which cover everything it publishes (the
packets, the archive of the same night). See skyvault/alerts/README.md.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from skyvault.alerts.archive import night_date
from skyvault.alerts.packet import packet_bytes
from skyvault.alerts.streams import Stream

BROKER_VARIABLE = "SKYVAULT_ALERTS_KAFKA"


class KafkaNotConfigured(RuntimeError):
    """No broker address (``SKYVAULT_ALERTS_KAFKA``), or the client is not installed."""


class PublishFailed(RuntimeError):
    """The broker did not acknowledge every alert."""


def broker_address() -> str | None:
    return os.environ.get(BROKER_VARIABLE, "").strip() or None


def topic_name(stream: Stream, nid: int) -> str:
    return f"ztf_{night_date(nid):%Y%m%d}_programid{min(stream.programs)}"


def publish(alerts: Iterable[dict[str, Any]], stream: Stream, nid: int,
            bootstrap: str | None = None, timeout_s: float = 60.0) -> int:
    """Send the alerts to the night's topic of the stream; returns how many the broker
    acknowledged. Raises KafkaNotConfigured without a broker or client, PublishFailed when
    any alert was not delivered in time."""
    servers = bootstrap or broker_address()
    if not servers:
        raise KafkaNotConfigured(f"no Kafka broker: set {BROKER_VARIABLE}")
    try:
        from confluent_kafka import Producer
    except ImportError:
        raise KafkaNotConfigured("confluent-kafka is not installed (pip install "
                                 "-e '.[kafka]')") from None
    producer = Producer({"bootstrap.servers": servers, "enable.idempotence": True,
                         "compression.type": "lz4", "linger.ms": 50})
    topic = topic_name(stream, nid)
    delivered, failed = [0], []

    def report(error, _message) -> None:
        if error is None:
            delivered[0] += 1
        else:
            failed.append(str(error))

    sent = 0
    for alert in alerts:
        producer.produce(topic, value=packet_bytes(alert), key=str(alert["candid"]),
                         on_delivery=report)
        producer.poll(0)
        sent += 1
    remaining = producer.flush(timeout_s)
    if remaining or failed or delivered[0] != sent:
        raise PublishFailed(f"{topic}: {delivered[0]} of {sent} alerts delivered"
                            + (f" ({failed[0]})" if failed else ""))
    return delivered[0]
