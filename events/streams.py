"""JetStream streams and durable consumers (DESIGN §4), defined in deploy/nats/streams.json.

`provision` creates what is missing and updates what differs; running it twice changes
nothing. Streams marked dev_only (COMPLIANCE, TENANT) are other teams' in production and
are created only when NATS_PROVISION_DEV_STREAMS is on; our durable consumers on them are
created whenever their stream exists.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import NotFoundError

log = logging.getLogger(__name__)

DEFINITIONS = Path(settings.BASE_DIR) / "deploy" / "nats" / "streams.json"


def load_definitions(path: Path | None = None) -> dict[str, Any]:
    data = json.loads((path or DEFINITIONS).read_text())
    for stream in data["streams"]:
        for key in ("name", "subjects", "max_age_seconds", "duplicate_window_seconds"):
            if key not in stream:
                raise ValueError(f"{path or DEFINITIONS}: stream {stream.get('name', '?')}: {key} is required")
    return data


def stream_config(spec: dict[str, Any], replicas: int) -> StreamConfig:
    return StreamConfig(
        name=spec["name"],
        subjects=list(spec["subjects"]),
        description=spec.get("description"),
        retention=RetentionPolicy(spec.get("retention", "limits")),
        storage=StorageType(spec.get("storage", "file")),
        discard=DiscardPolicy(spec.get("discard", "old")),
        max_age=float(spec["max_age_seconds"]),
        max_bytes=int(spec.get("max_bytes", -1)),
        max_msg_size=int(spec.get("max_msg_size", -1)),
        duplicate_window=float(spec["duplicate_window_seconds"]),
        num_replicas=replicas,
    )


def consumer_config(spec: dict[str, Any]) -> ConsumerConfig:
    return ConsumerConfig(
        durable_name=spec["durable"],
        filter_subject=spec["filter_subject"],
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy(spec.get("deliver_policy", "all")),
        ack_wait=float(spec.get("ack_wait_seconds", 60)),
        max_ack_pending=int(spec.get("max_ack_pending", 100)),
        max_deliver=-1,  # the consumer decides when to give up (EVENT_CONSUMER_MAX_DELIVERIES)
    )


@dataclass
class ProvisionReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = []
        for label in ("created", "updated", "unchanged", "skipped"):
            for name in getattr(self, label):
                out.append(f"{label:9} {name}")
        return out


_COMPARED = ("subjects", "retention", "storage", "discard", "max_age", "max_bytes", "max_msg_size", "duplicate_window")


async def provision(
    js: JetStreamContext,
    *,
    include_dev: bool | None = None,
    replicas: int | None = None,
    definitions: dict[str, Any] | None = None,
) -> ProvisionReport:
    defs = definitions or load_definitions()
    include_dev = settings.NATS_PROVISION_DEV_STREAMS if include_dev is None else include_dev
    replicas = replicas or settings.NATS_STREAM_REPLICAS
    report = ProvisionReport()
    present: set[str] = set()
    for spec in defs["streams"]:
        name = spec["name"]
        config = stream_config(spec, 1 if spec.get("dev_only") else replicas)
        try:
            info = await js.stream_info(name)
        except NotFoundError:
            if spec.get("dev_only") and not include_dev:
                report.skipped.append(f"stream {name} (dev only)")
                continue
            await js.add_stream(config)
            report.created.append(f"stream {name}")
            present.add(name)
            continue
        present.add(name)
        current = info.config
        if any(getattr(current, k) != getattr(config, k) for k in _COMPARED):
            await js.update_stream(config)
            report.updated.append(f"stream {name}")
        else:
            report.unchanged.append(f"stream {name}")
    for spec in defs.get("consumers", []):
        label = f"consumer {spec['stream']}/{spec['durable']}"
        if spec["stream"] not in present:
            report.skipped.append(f"{label} (stream missing)")
            continue
        wanted = consumer_config(spec)
        try:
            info = await js.consumer_info(spec["stream"], spec["durable"])
        except NotFoundError:
            await js.add_consumer(spec["stream"], wanted)
            report.created.append(label)
            continue
        current = info.config
        if (current.filter_subject, current.ack_wait, current.max_ack_pending) != (
            wanted.filter_subject,
            wanted.ack_wait,
            wanted.max_ack_pending,
        ):
            await js.add_consumer(spec["stream"], wanted)  # the server updates a durable in place
            report.updated.append(label)
        else:
            report.unchanged.append(label)
    for line in report.lines():
        log.info("provision_streams: %s", line)
    return report
