"""docs/deploy.md states the stream and consumer definitions the code has (names, subjects,
limits, durables), so operators can trust it; and it keeps the sections ops need."""

from __future__ import annotations

import importlib
import re

import pytest

from shared.messaging import DUPLICATE_WINDOW_SECONDS, MAX_AGE_SECONDS, STREAMS
from shared.settings import ServiceSettings
from tests.deploy.support import DOCS, SERVICES


def rows() -> list[list[str]]:
    return [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in DOCS.read_text().splitlines()
        if line.startswith("|")
    ]


@pytest.mark.parametrize("stream", STREAMS)
def test_streams_are_documented_as_configured(stream: str) -> None:
    (row,) = [r for r in rows() if r[0] == f"`{stream}`"]
    assert [f"`{s}`" for s in STREAMS[stream]] == row[1].split(", ")
    assert f"{int(MAX_AGE_SECONDS // 86400)} days" in row
    assert row[6].startswith(f"{int(DUPLICATE_WINDOW_SECONDS)} s")


def test_consumer_defaults_are_documented() -> None:
    text = " ".join(DOCS.read_text().split())
    fields = ServiceSettings.model_fields
    assert f"`CONSUMER_MAX_DELIVER` (default {fields['consumer_max_deliver'].default})" in text
    assert f"`CONSUMER_ACK_WAIT` (default {fields['consumer_ack_wait'].default:g} s)" in text


def subscriptions() -> list[tuple[str, str, object]]:
    return [
        (service, sub.durable, sub)
        for service in SERVICES
        for sub in importlib.import_module(f"services.{service}.consumers").SUBSCRIPTIONS
    ]


@pytest.mark.parametrize(("service", "durable", "sub"), subscriptions(), ids=[d for _, d, _ in subscriptions()])
def test_every_durable_consumer_is_documented(service: str, durable: str, sub: object) -> None:
    (row,) = [r for r in rows() if r[0] == f"`{durable}`"]
    assert row[1] == f"`{sub.stream}`"  # type: ignore[attr-defined]
    assert sorted(re.findall(r"`([^`]+)`", row[2])) == sorted(sub.subjects)  # type: ignore[attr-defined]
    assert row[3] == service


def test_no_documented_durable_is_gone() -> None:
    durables = {d for _, d, _ in subscriptions()}
    documented = {r[0].strip("`") for r in rows() if re.fullmatch(r"`[a-z]+-[a-z]+`", r[0])}
    assert documented == durables


def test_ops_sections_are_there() -> None:
    text = DOCS.read_text()
    for needle in (
        "## Topology past one machine",
        "## Scaling: what to scale when",
        "make bench",
        "### Pointing at managed PostgreSQL and NATS",
        "## Upgrades and migrations",
        "expand / contract",
        "pg_dump",
        "pg_restore",
        "nats stream backup",
        "nats stream restore",
        "ScheduledBackup",
        "sync_interval: always",
        "idempotent",
    ):
        assert needle in text, needle
