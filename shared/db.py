"""Async engine, sessions and the request's unit of work. Services add and flush; the boundary
(the request's dependency, or the consumer runner) commits (shared/uow.py).

Routes that only read take a read-only unit of work (`read_only`): its connection is in
autocommit, so a request costs its queries and nothing else (no BEGIN and COMMIT round trips,
which were ~15% of a batch read's time in the services). Each statement sees its own snapshot;
a read route that needs two statements to agree uses `transactional`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.settings import ServiceSettings
from shared.uow import UnitOfWork


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


async def _unit_of_work(request: Request) -> AsyncIterator[UnitOfWork]:
    """One unit of work per request, committed when the route returns without error.

    Used with scope="function" (below): the commit runs *before* the response is sent, so a
    failed commit can never be answered with a success."""
    maker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with maker() as session:
        uow = UnitOfWork(session)
        try:
            yield uow
            await uow.commit()
        except BaseException:
            await uow.rollback()
            raise
        await uow.publish_live(request.app.state.runtime.nc)


async def _read_only_unit_of_work(request: Request) -> AsyncIterator[UnitOfWork]:
    """One autocommit session per read-only request (nothing to commit, nothing to publish)."""
    maker: async_sessionmaker[AsyncSession] = request.app.state.read_sessionmaker
    async with maker() as session:
        yield UnitOfWork(session, read_only=True)


UnitOfWorkDep = Annotated[UnitOfWork, Depends(_unit_of_work, scope="function")]
ReadOnlyUnitOfWorkDep = Annotated[UnitOfWork, Depends(_read_only_unit_of_work, scope="function")]

S = TypeVar("S")
ServiceFactory = Callable[[UnitOfWork, Request], S]


def transactional(make: ServiceFactory[S]) -> Callable[[Request, UnitOfWork], Awaitable[S]]:
    """A route dependency giving the service's use cases on the request's transaction:
    `Service = Annotated[IdeaService, Depends(transactional(IdeaService.of))]`."""

    async def dependency(request: Request, uow: UnitOfWorkDep) -> S:
        return make(uow, request)

    return dependency


def read_only(make: ServiceFactory[S]) -> Callable[[Request, UnitOfWork], Awaitable[S]]:
    """The same for routes that only read: an autocommit session, no transaction."""

    async def dependency(request: Request, uow: ReadOnlyUnitOfWorkDep) -> S:
        return make(uow, request)

    return dependency
