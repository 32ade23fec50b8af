"""Read sessions run their statements without a transaction; write sessions keep theirs."""

from __future__ import annotations

from sqlalchemy import text

from devstack.testing import Infra, migrated_database
from shared.db import create_engine, create_read_sessionmaker, create_sessionmaker
from shared.settings import ServiceSettings


async def test_a_read_session_sends_no_begin_and_a_write_session_does(infra: Infra) -> None:
    url = await migrated_database(infra, "votes", "kit_db")
    engine = create_engine(ServiceSettings(service_name="kit", database_url=url))
    try:
        async with create_read_sessionmaker(engine)() as session:
            assert (await session.execute(text("SELECT 1"))).scalar_one() == 1
            raw = await (await session.connection()).get_raw_connection()
            assert not raw.driver_connection.is_in_transaction(), "a read session must not open a transaction"
        async with create_sessionmaker(engine)() as session:
            await session.execute(text("SELECT 1"))
            raw = await (await session.connection()).get_raw_connection()
            assert raw.driver_connection.is_in_transaction(), "a write session keeps its transaction until commit"
            await session.commit()
    finally:
        await engine.dispose()
