"""Async engine and sessions. Services add and flush; the boundary (the request's session
dependency, or the consumer runner) commits.

Routes that only read take `ReadSessionDep`: its connection is in autocommit, so a request costs
its queries and nothing else (no BEGIN and COMMIT round trips, which were ~15% of a batch read's
time in the services). Each statement sees its own snapshot; a read route that needs two
statements to agree uses `SessionDep`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.live import discard_live, flush_live
from shared.settings import ServiceSettings


def create_engine(settings: ServiceSettings) -> AsyncEngine:
    connect_args: dict[str, Any] = {
        "command_timeout": 30,
        "server_settings": {"application_name": settings.service_name},
    }
    url = settings.resolved_database_url()
    if settings.db_transaction_pooler:
        # PgBouncer in transaction mode: no server-side prepared statement may outlive a
        # transaction, so turn asyncpg's and SQLAlchemy's statement caches off.
        connect_args["statement_cache_size"] = 0
        url += ("&" if "?" in url else "?") + "prepared_statement_cache_size=0"
    return create_async_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_pre_ping=settings.db_pool_pre_ping,
        pool_recycle=1800,
        connect_args=connect_args,
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


def create_read_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions for read-only routes: the same pool, connections in autocommit."""
    return create_sessionmaker(engine.execution_options(isolation_level="AUTOCOMMIT"))


async def session_dependency(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request, committed when the route returns without error.

    Used with scope="function" (below): the commit runs *before* the response is sent, so a
    failed commit can never be answered with a success."""
    maker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with maker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            discard_live(session)
            await session.rollback()
            raise
        await flush_live(session, request.app.state.runtime.nc)


async def read_session_dependency(request: Request) -> AsyncIterator[AsyncSession]:
    """One autocommit session per read-only request (nothing to commit)."""
    maker: async_sessionmaker[AsyncSession] = request.app.state.read_sessionmaker
    async with maker() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(session_dependency, scope="function")]
ReadSessionDep = Annotated[AsyncSession, Depends(read_session_dependency, scope="function")]


S = TypeVar("S")


def service_dependencies(make: Callable[[AsyncSession, Request], S]) -> tuple[Any, Any]:
    """`(Service, ReadService)` for a service's routes: each builds the use-case object with
    `make(session, request)`, on the request's transaction (Service) or, for routes that only
    read, on an autocommit session (ReadService)."""

    async def with_transaction(request: Request, session: SessionDep) -> S:
        return make(session, request)

    async def read_only(request: Request, session: ReadSessionDep) -> S:
        return make(session, request)

    return Annotated[Any, Depends(with_transaction)], Annotated[Any, Depends(read_only)]
