"""Alembic, driven from code: every service keeps its revisions in
`services/<name>/migrations/versions` and its env.py calls `run_env()`.

    python -m shared.migrations <service> [<service> ...]   # upgrade to head

Several replicas may start together: the upgrade holds a PostgreSQL advisory lock."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command, context
from alembic.config import Config
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from shared.settings import ServiceSettings, to_asyncpg_url

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ("stakeholders", "ideas", "votes", "comments")
MIGRATION_LOCK_ID = 7_331_001


def alembic_config(service: str, database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(ROOT / "services" / service / "migrations"))
    cfg.set_main_option("sqlalchemy.url", to_asyncpg_url(database_url).replace("%", "%%"))
    return cfg


def upgrade(service: str, database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(service, database_url), revision)


def run_env() -> None:
    """The body of every service's env.py (online mode, asyncpg)."""
    url = context.config.get_main_option("sqlalchemy.url")
    assert url is not None

    def do_run(connection: Connection) -> None:
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})
        context.configure(connection=connection, target_metadata=None, transaction_per_migration=False)
        with context.begin_transaction():
            context.run_migrations()

    async def main() -> None:
        engine = create_async_engine(url)
        async with engine.begin() as conn:
            await conn.run_sync(do_run)
        await engine.dispose()

    asyncio.run(main())


def create_messaging_tables(op: Any) -> None:
    """Every messaging table a service has, as they are now: a new service's first revision
    calls this. (The four first services created them in two steps, revisions 0001 and 0002.)"""
    create_messaging_tables_v1(op)
    add_messaging_tables_v2(op)


def add_messaging_tables_v2(op: Any) -> None:
    """The last version each projection applied per aggregate (the VERSIONED streams' ordering
    rule, shared/consumer.py), and the indexes the periodic pruning of sent outbox rows and old
    inbox rows uses (shared/outbox.py prune_messaging)."""
    op.create_table(
        "projection_version",
        sa.Column("consumer", sa.String(), primary_key=True),
        sa.Column("aggregate_id", sa.String(), primary_key=True),
        sa.Column("version", sa.Integer(), nullable=False),
    )
    op.create_index("ix_outbox_sent", "outbox", ["sent_at"], postgresql_where=sa.text("sent_at IS NOT NULL"))
    op.create_index("ix_inbox_processed", "inbox", ["processed_at"])


def drop_messaging_tables_v2(op: Any) -> None:
    op.drop_table("projection_version")
    op.drop_index("ix_outbox_sent", "outbox")
    op.drop_index("ix_inbox_processed", "inbox")


def create_messaging_tables_v1(op: Any) -> None:
    """The outbox and inbox tables as the first four services' revision 0001 created them."""
    op.create_table(
        "outbox",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("subject", sa.String(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("headers", postgresql.JSONB(), nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_outbox_unsent", "outbox", ["created_at"], postgresql_where=sa.text("sent_at IS NULL"))
    op.execute(
        "CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN PERFORM pg_notify('outbox', ''); RETURN NULL; END $$"
    )
    op.execute(
        "CREATE TRIGGER outbox_notify AFTER INSERT ON outbox FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify()"
    )
    op.create_table(
        "inbox",
        sa.Column("consumer", sa.String(), primary_key=True),
        sa.Column("event_id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )


def main(argv: list[str]) -> int:
    """Upgrade each named service (all by default). Its database is `<SERVICE>_DATABASE_URL`,
    else `PG_URL`/<service>; DATABASE_URL is deliberately not read (it names one database)."""
    for service in argv or list(SERVICES):
        url = os.environ.get(f"{service.upper()}_DATABASE_URL")
        if url is None:
            url = ServiceSettings(service_name=service, database_url=None).resolved_database_url()
        upgrade(service, url)
        print(f"migrated {service}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
