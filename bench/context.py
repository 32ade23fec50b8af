"""What the scenarios of one run share: the platform (Stack) and its processes (finder, memory
sampler, profiler), the dataset and the accounts logged in, the results so far (table rows and
notes, in the order they are found), the progress display, and the bench's own look into the
service databases."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from sqlalchemy import Select, func, select
from sqlalchemy.dialects import postgresql
from sqlmodel import col

from bench import report as rep
from bench.load import GraphQLClient
from bench.profile import Profiler
from bench.resources import SERVICES, ProcessFinder, Sampler
from bench.seed import Dataset, SeedReport
from devstack.stack import Stack, new_data_dir, stack_env
from services.ideas.models import Idea
from services.votes.models import Vote
from shared.outbox import OutboxMessage


def _sql(statement: Select[Any]) -> str:
    """A statement built from the services' table definitions, as text for asyncpg."""
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    return str(statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


# Every vote counted once the ideas service's scores add up to the votes service's weights.
SCORE_TOTAL = _sql(select(func.coalesce(func.sum(col(Idea.score)), 0)))
WEIGHT_TOTAL = _sql(select(func.coalesce(func.sum(col(Vote.weight)), 0)))
UNSENT = _sql(select(func.count()).select_from(OutboxMessage).where(col(OutboxMessage.sent_at).is_(None)))


@dataclass
class Voter:
    index: int  # in the dataset
    token: str
    client: GraphQLClient  # the write-path connection
    voted: set[int] = field(default_factory=set)


class Databases:
    """One kept connection per service database for the bench's own checks (a new connection
    per check would fork a PostgreSQL backend each time)."""

    def __init__(self, pg_url: str) -> None:
        self.pg_url = pg_url
        self.connections: dict[str, asyncpg.Connection] = {}

    async def connection(self, service: str) -> asyncpg.Connection:
        conn = self.connections.get(service)
        if conn is None or conn.is_closed():
            conn = self.connections[service] = await asyncpg.connect(f"{self.pg_url}/{service}")
        return conn

    async def totals(self) -> tuple[int, int]:
        """(sum of the ideas' scores, sum of the votes' weights)."""
        score = await (await self.connection("ideas")).fetchval(SCORE_TOTAL)
        weight = await (await self.connection("votes")).fetchval(WEIGHT_TOTAL)
        return int(score), int(weight)

    async def unsent(self) -> int:
        total = 0
        for service in SERVICES:
            conn = await self.connection(service)
            total += int(await conn.fetchval(UNSENT))
        return total

    async def transactions(self) -> dict[str, int]:
        """Committed + rolled back transactions so far, per service database."""
        conn = await self.connection("votes")
        rows = await conn.fetch(
            "SELECT datname, xact_commit + xact_rollback AS n FROM pg_stat_database WHERE datname = ANY($1::text[])",
            list(SERVICES),
        )
        return {r["datname"]: int(r["n"]) for r in rows}

    async def close(self) -> None:
        for conn in self.connections.values():
            with contextlib.suppress(Exception):
                await conn.close()


class Context:
    def __init__(self, args: argparse.Namespace, console: Console) -> None:
        self.args = args
        self.console = console
        self.rng = random.Random(args.seed + 1)
        self.data_dir = new_data_dir("ccp-bench-")
        extra = {"WORKERS": str(args.workers)} if args.workers else {}
        if args.replicas:
            extra["REPLICAS"] = str(args.replicas)
        self.stack = Stack(data_dir=self.data_dir, env=stack_env(self.data_dir, **extra))
        self.finder = ProcessFinder(self.stack)
        self.sampler = Sampler(self.finder)
        self.profiler = Profiler(self.finder, args.profile)
        self.databases = Databases(self.pg_url)
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            console=console,
            refresh_per_second=4,
            transient=False,
            disable=not console.is_terminal,  # a log gets one line per phase instead
        )
        self.ds: Dataset | None = None
        self.voters: list[Voter] = []
        self.readers: list[str] = []
        self.rows: list[rep.Row] = []
        self.notes: list[str] = []
        self.seed_report = SeedReport()
        self.rest: dict[str, float] = {}
        self.cpu_per_vote: dict[str, float] = {}
        self.cpu_per_read: dict[str, float] = {}
        self.dataset_summary = ""

    @property
    def pg_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.stack.env['EMBEDDED_PG_PORT']}"

    @property
    def url(self) -> str:
        return self.stack.graphql_url

    @property
    def dataset(self) -> Dataset:
        assert self.ds is not None, "the dataset is generated first"
        return self.ds

    @contextlib.asynccontextmanager
    async def phase(self, name: str, seconds: float | None = None) -> AsyncIterator[Callable[[int], None]]:
        """A progress line for a phase; yields a tick(n) that counts requests."""
        task = self.progress.add_task(name, total=seconds, info="")
        count = 0
        t0 = time.perf_counter()

        def tick(n: int) -> None:
            nonlocal count
            count += n

        async def ticker() -> None:
            while True:
                elapsed = time.perf_counter() - t0
                self.progress.update(
                    task,
                    completed=min(elapsed, seconds) if seconds else None,
                    info=f"{count:,} requests" if count else "",
                )
                await asyncio.sleep(0.25)

        ticking = asyncio.create_task(ticker())
        try:
            yield tick
        finally:
            ticking.cancel()
            if not self.console.is_terminal:
                self.console.print(
                    f"{time.strftime('%H:%M:%S')} {name}: {time.perf_counter() - t0:.1f} s"
                    + (f", {count:,} requests" if count else "")
                )
            self.progress.update(
                task, completed=seconds, total=seconds or 1, info=f"{count:,} requests" if count else "done"
            )
            if not seconds:
                self.progress.update(task, completed=1)

    async def drain(self, what: str) -> float:
        """Wait (bounded) until every vote is counted by the ideas service and no outbox row is
        pending; the seconds it took."""
        t0 = time.perf_counter()
        score = weight = unsent = 0
        async with self.phase(f"wait for the projections to catch up after the {what}"):
            while time.perf_counter() - t0 < self.args.drain_timeout:
                score, weight = await self.databases.totals()
                unsent = await self.databases.unsent()
                if score == weight and unsent == 0:
                    return time.perf_counter() - t0
                await asyncio.sleep(0.1)
        self.notes.append(
            f"the projections had not caught up {self.args.drain_timeout:.0f} s after the {what}: "
            f"sum(idea.score) {score}, sum(vote.weight) {weight}, unsent outbox rows {unsent}"
        )
        return time.perf_counter() - t0

    async def close(self) -> None:
        await self.databases.close()
        for voter in self.voters:
            with contextlib.suppress(Exception):
                await voter.client.aclose()
