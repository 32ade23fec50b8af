"""Bounded messaging tables: sent outbox rows and inbox rows older than the retention (the
streams' duplicate window plus a margin) are deleted, by a periodic task every service runs;
unsent outbox rows and recent rows stay."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text

from devstack.testing import Infra, migrated_database
from devstack.waiting import eventually
from shared.db import create_engine
from shared.messaging import DUPLICATE_WINDOW_SECONDS
from shared.outbox import prune_messaging
from shared.settings import ServiceSettings

OLD = timedelta(hours=2)


async def seed(engine: Any, ago: timedelta) -> dict[str, uuid.UUID]:
    """One sent and one unsent outbox row, and one inbox row, all written `ago`."""
    at = datetime.now(UTC) - ago
    ids = {"sent": uuid.uuid4(), "unsent": uuid.uuid4(), "inbox": uuid.uuid4()}
    async with engine.begin() as conn:
        for name, sent_at in (("sent", at), ("unsent", None)):
            await conn.execute(
                text("INSERT INTO outbox (id, subject, payload, created_at, sent_at) VALUES (:i, 's', '', :c, :s)"),
                {"i": ids[name], "c": at, "s": sent_at},
            )
        await conn.execute(
            text("INSERT INTO inbox (consumer, event_id, processed_at) VALUES ('kit', :e, :p)"),
            {"e": ids["inbox"], "p": at},
        )
    return ids


async def left(engine: Any, ids: dict[str, uuid.UUID]) -> set[str]:
    async with engine.connect() as conn:
        outbox = set(
            (await conn.execute(text("SELECT id FROM outbox WHERE id = ANY(:i)"), {"i": list(ids.values())})).scalars()
        )
        inbox = set(
            (await conn.execute(text("SELECT event_id FROM inbox WHERE event_id = :e"), {"e": ids["inbox"]})).scalars()
        )
    return {name for name, i in ids.items() if i in outbox | inbox}


def test_the_default_retention_outlasts_the_duplicate_window() -> None:
    assert ServiceSettings().messaging_retention_seconds > DUPLICATE_WINDOW_SECONDS


async def test_old_sent_and_inbox_rows_go_unsent_and_recent_ones_stay(infra: Infra) -> None:
    url = await migrated_database(infra, "votes", "kit_prune")
    engine = create_engine(ServiceSettings(service_name="kit", database_url=url))
    try:
        old, recent = await seed(engine, OLD), await seed(engine, timedelta(seconds=5))
        removed = await prune_messaging(engine, retention_seconds=3600, batch_size=1)
        assert removed["outbox"] >= 1 and removed["inbox"] >= 1
        assert await left(engine, old) == {"unsent"}, "an unsent row is never deleted"
        assert await left(engine, recent) == {"sent", "unsent", "inbox"}
    finally:
        await engine.dispose()


async def test_every_service_prunes_periodically(service_app: Any) -> None:
    app, _ = await service_app("comments", database="kit_prune_app", messaging_prune_interval=0.1)
    engine = app.state.runtime.engine
    old, recent = await seed(engine, OLD), await seed(engine, timedelta(seconds=5))
    await eventually(
        lambda: _only(engine, old, {"unsent"}), what="the periodic task deleted the old sent and inbox rows"
    )
    assert await left(engine, recent) == {"sent", "unsent", "inbox"}


async def _only(engine: Any, ids: dict[str, uuid.UUID], expected: set[str]) -> bool:
    return await left(engine, ids) == expected
