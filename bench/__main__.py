"""`make bench` (`python -m bench`): start the platform as `make run` does, seed it at scale
through the bulk path, measure ceilings, the write path, propagation and the read path, and
report (console tables + a section in BENCHMARKS.md).

    python -m bench                       # the full run: scale 1.0, 10 s phases (< 10 minutes)
    python -m bench --scale 0.001 --duration 1 --output /tmp/b.md --json /tmp/b.json

Everything is bounded: every phase by a duration and a request count, every request by a
timeout, every wait for the platform to catch up by a deadline. Missed targets are reported,
never turned into a failing exit code."""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import gc
import os
import random
import shutil
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import orjson
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from bench import report as rep
from bench.floor import graphql_execution_floor
from bench.load import GraphQLClient, LoadResult, Recorder, RequestError, closed_loop, paced_loop
from bench.profile import Profiler
from bench.resources import GROUPS, PYTHON_GROUPS, SERVICES, ProcessFinder, Sampler, cpu_delta, cpu_snapshot
from bench.seed import SEARCH_WORD, Dataset, SeedConfig, SeedReport, bulk_load, generate
from bench.ws import GraphQLWS, Subscription
from devstack.stack import Stack, new_data_dir, stack_env

ROOT = Path(__file__).resolve().parent.parent

# Targets (reported, not enforced).
WRITE_RATIO, WRITE_P99_MS = 0.15, 100.0
READ_RATIO, READ_P99_MS = 0.40, 50.0
PROPAGATION_P99_MS = 250.0
SERVICE_RSS_MB = 150.0
# The handbook's measured facts (same kind of 2-core machine): sanity references.
HANDBOOK_PG_TPS, HANDBOOK_TYPENAME_RPS = 9_000, 2_200
HANDBOOK_PG_INSERT = "pgbench INSERT … ON CONFLICT 8,000-10,000 tps"
HANDBOOK_TYPENAME = "strawberry ASGI, trivial query ~2,200 req/s"

CAST = "mutation($id: ID!, $w: Int) { castVote(ideaId: $id, weight: $w) { weight } }"
POLL = "query($id: ID!) { idea(id: $id) { score } }"
WATCH = "subscription($id: ID!) { ideaChanged(id: $id) { score } }"
LOGIN = "mutation($email: String!, $password: String!) { login(email: $email, password: $password) { token } }"
READ = (
    "query($sort: IdeaSort, $segment: StakeholderKind, $search: String) { ideas(first: 20, sort: $sort, "
    "segment: $segment, search: $search) { edges { node { id title score voters tally { kind voters weight } "
    "commentCount author { displayName } myVote { weight } } } } }"
)
READS = (
    ("ideas TOP", {"sort": "TOP"}),
    ("ideas TOP segment PARTNER", {"sort": "TOP", "segment": "PARTNER"}),
    ("ideas TRENDING", {"sort": "TRENDING"}),
    (f'ideas TOP search "{SEARCH_WORD}"', {"sort": "TOP", "search": SEARCH_WORD}),
)
MAX_REQUESTS = 500_000  # per phase: a count bound besides the duration
DRAIN_TIMEOUT = 60.0
PROBE_TIMEOUT = 10.0
POLL_INTERVAL = 0.01


def idea_gid(idea_id: uuid.UUID) -> str:
    """The opaque global id of an idea (base64 "Idea:<uuid>", as gateway/ids.py encodes it)."""
    return base64.b64encode(f"Idea:{idea_id}".encode()).decode()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="dataset size; 1.0 = 10k stakeholders, 100k ideas, 1M votes, 200k comments (default 1.0)",
    )
    p.add_argument("--duration", type=float, default=10.0, help="seconds per measured phase (default 10)")
    p.add_argument("--write-clients", type=int, default=64)
    p.add_argument("--read-clients", type=int, default=32)
    p.add_argument("--ceiling-clients", type=int, default=64)
    p.add_argument("--watched", type=int, default=8, help="ideas watched by subscriptions in the propagation phase")
    p.add_argument("--probes", type=int, default=2, help="propagation probes in flight at once (default 2)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--workers", type=int, default=None, help="WORKERS for the platform (default: as make run)")
    p.add_argument("--replicas", type=int, default=None, help="REPLICAS for the platform (default: as make run)")
    p.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md", help="markdown file to update")
    p.add_argument("--json", type=Path, default=None, help="also write the results as JSON here")
    p.add_argument("--keep-data", action="store_true", help="keep the platform's data folder")
    p.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="sample the Python processes with py-spy during the write and read phases; stacks + summaries here",
    )
    p.add_argument(
        "--drain-timeout",
        type=float,
        default=DRAIN_TIMEOUT,
        help="longest wait for the projections to catch up after a phase (default 60 s)",
    )
    args = p.parse_args(argv)
    if args.scale <= 0 or args.duration <= 0:
        p.error("--scale and --duration must be positive")
    return args


@dataclass
class Voter:
    index: int  # in the dataset
    token: str
    client: GraphQLClient  # the write-path connection
    voted: set[int] = field(default_factory=set)


class Bench:
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
        self.monitors: dict[str, asyncpg.Connection] = {}
        self.ceiling_a: LoadResult | None = None
        self.dataset_summary = ""

    # --- plumbing ------------------------------------------------------------------------------
    @property
    def pg_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.stack.env['EMBEDDED_PG_PORT']}"

    @property
    def url(self) -> str:
        return self.stack.graphql_url

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

    # --- the run -------------------------------------------------------------------------------
    async def run(self) -> rep.Report:
        started = datetime.now(UTC)
        machine = rep.machine()
        with self.progress:
            async with self.phase("start the platform (python -m devstack run)"):
                await asyncio.to_thread(self.stack.start)
            await self.seed()
            await self.check_seeded_state()
            await self.log_in()
            await asyncio.sleep(1.0)
            self.rest = self.sampler.sample()
            await self.ceiling_postgres()
            ceiling_b = await self.ceiling_gateway()
            self.sampler.start()
            with self.profiler.recording("write", self.args.duration):
                write = await self.write_path()
            await self.propagation(write.rate)
            with self.profiler.recording("read", self.args.duration * len(READS)):
                await self.read_path(ceiling_b)
            self.sampler.stop()
        return self.report(started, machine)

    async def seed(self) -> None:
        config = SeedConfig.at_scale(
            self.args.scale,
            min_stakeholders=max(self.args.write_clients, self.args.read_clients) * 2 + 16,
            seed=self.args.seed,
        )
        async with self.phase(
            f"generate the dataset ({config.stakeholders:,} stakeholders, {config.ideas:,} "
            f"ideas, {config.votes:,} votes, {config.comments:,} comments)"
        ):
            self.ds = await asyncio.to_thread(generate, config, None, self.seed_report)
        ds = self.ds
        self.dataset_summary = (
            f"{len(ds.people):,} stakeholders / {len(ds.ideas):,} ideas / {ds.final_vote_count:,} votes / "
            f"{len(ds.comments):,} comments"
        )
        async with self.phase("bulk load (COPY into the four databases, VACUUM ANALYZE)"):
            await bulk_load(self.ds, self.pg_url, self.seed_report)

    async def check_seeded_state(self) -> None:
        """The seeded projections agree with the seeded votes (sum of scores = sum of weights)."""
        score, weight = await self._totals()
        if score != weight:
            self.notes.append(f"seeded state inconsistent: sum(idea.score) {score} != sum(vote.weight) {weight}")

    async def _monitor(self, service: str) -> asyncpg.Connection:
        """One kept connection per service database for the bench's own checks (a new
        connection per check would fork a PostgreSQL backend each time)."""
        conn = self.monitors.get(service)
        if conn is None or conn.is_closed():
            conn = self.monitors[service] = await asyncpg.connect(f"{self.pg_url}/{service}")
        return conn

    async def _totals(self) -> tuple[int, int]:
        score = await (await self._monitor("ideas")).fetchval("SELECT coalesce(sum(score), 0) FROM idea")
        weight = await (await self._monitor("votes")).fetchval("SELECT coalesce(sum(weight), 0) FROM vote")
        return int(score), int(weight)

    async def _unsent(self) -> int:
        total = 0
        for service in SERVICES:
            conn = await self._monitor(service)
            total += int(await conn.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL"))
        return total

    async def transactions(self) -> dict[str, int]:
        """Committed + rolled back transactions so far, per service database."""
        conn = await self._monitor("votes")
        rows = await conn.fetch(
            "SELECT datname, xact_commit + xact_rollback AS n FROM pg_stat_database WHERE datname = ANY($1::text[])",
            list(SERVICES),
        )
        return {r["datname"]: int(r["n"]) for r in rows}

    def cpu_mark(self) -> tuple[dict[str, dict[int, float]], float]:
        return cpu_snapshot(self.finder.groups()), self.sampler.cpu_spent

    def cpu_since(self, mark: tuple[dict[str, dict[int, float]], float]) -> dict[str, float]:
        """CPU seconds per group since `mark`, the memory sampler's own cost taken off the bench client."""
        before, sampled = mark
        spent = cpu_delta(before, cpu_snapshot(self.finder.groups()))
        spent["bench client"] = max(0.0, spent.get("bench client", 0.0) - (self.sampler.cpu_spent - sampled))
        return spent

    async def drain(self, what: str) -> float:
        """Wait (bounded) until every vote is counted by the ideas service and no outbox row is
        pending; the seconds it took."""
        t0 = time.perf_counter()
        score = weight = unsent = 0
        async with self.phase(f"wait for the projections to catch up after the {what}"):
            while time.perf_counter() - t0 < self.args.drain_timeout:
                score, weight = await self._totals()
                unsent = await self._unsent()
                if score == weight and unsent == 0:
                    return time.perf_counter() - t0
                await asyncio.sleep(0.1)
        self.notes.append(
            f"the projections had not caught up {self.args.drain_timeout:.0f} s after the {what}: "
            f"sum(idea.score) {score}, sum(vote.weight) {weight}, unsent outbox rows {unsent}"
        )
        return time.perf_counter() - t0

    async def log_in(self) -> None:
        assert self.ds is not None
        wanted = max(self.args.write_clients, self.args.read_clients)
        members = self.ds.members(wanted)
        if len(members) < wanted:
            raise RuntimeError(f"only {len(members)} MEMBER stakeholders for {wanted} clients")
        tokens: dict[int, str] = {}
        anonymous = GraphQLClient(self.url)
        semaphore = asyncio.Semaphore(8)

        async def login(index: int, tick: Callable[[int], None]) -> None:
            assert self.ds is not None
            async with semaphore:
                for _ in range(30):
                    try:
                        data = await anonymous(LOGIN, email=self.ds.people[index].email, password="bench password 123")
                    except RequestError as exc:
                        if exc.code != "RATE_LIMITED":
                            raise
                        await asyncio.sleep(1.0)
                        continue
                    tokens[index] = data["login"]["token"]
                    tick(1)
                    return
                raise RuntimeError("login stayed rate limited")

        async with self.phase(f"log in {wanted} seeded stakeholders") as tick:
            await asyncio.gather(*(login(i, tick) for i in members))
        await anonymous.aclose()
        voted = self.ds.votes_of(members[: self.args.write_clients])
        self.voters = [
            Voter(index=i, token=tokens[i], client=GraphQLClient(self.url, tokens[i]), voted=voted[i])
            for i in members[: self.args.write_clients]
        ]
        self.readers = [tokens[i] for i in members[: self.args.read_clients]]
        # The history is in the databases now: keep the load generator's heap small, and out of
        # the garbage collector's way (a full collection over millions of objects stalls the loop).
        self.ds.release_history()
        gc.collect()
        gc.freeze()

    # --- ceilings ------------------------------------------------------------------------------
    async def ceiling_postgres(self) -> LoadResult:
        n, seconds = self.args.ceiling_clients, self.args.duration
        admin = await asyncpg.connect(f"{self.pg_url}/postgres")
        await admin.execute("DROP DATABASE IF EXISTS bench_scratch")
        await admin.execute("CREATE DATABASE bench_scratch")
        pool = await asyncpg.create_pool(f"{self.pg_url}/bench_scratch", min_size=n, max_size=n)
        try:
            await pool.execute(
                "CREATE TABLE scratch_vote (idea_id uuid NOT NULL, voter_id uuid NOT NULL, weight smallint NOT NULL,"
                " voter_kind varchar NOT NULL, cast_at timestamptz NOT NULL, updated_at timestamptz NOT NULL,"
                " PRIMARY KEY (idea_id, voter_id))"
            )
            await pool.execute("CREATE INDEX ix_scratch_vote_voter ON scratch_vote (voter_id)")
            connections = [await pool.acquire() for _ in range(n)]
            sql = (
                "INSERT INTO scratch_vote (idea_id, voter_id, weight, voter_kind, cast_at, updated_at) "
                "VALUES ($1, $2, $3, $4, now(), now()) ON CONFLICT DO NOTHING"
            )
            kinds = ("CUSTOMER", "SUPPLIER", "PARTNER", "EMPLOYEE")

            async def insert(worker: int) -> None:
                await connections[worker].execute(sql, uuid.uuid4(), uuid.uuid4(), 1 + worker % 3, kinds[worker % 4])

            async with self.phase(f"ceiling (a): PostgreSQL INSERT … ON CONFLICT, {n} connections", seconds) as tick:
                result = await closed_loop(
                    "pg insert", insert, concurrency=n, duration=seconds, max_requests=MAX_REQUESTS, on_progress=tick
                )
            for conn in connections:
                await pool.release(conn)
        finally:
            await pool.close()
            await admin.execute("DROP DATABASE IF EXISTS bench_scratch")
            await admin.close()
        self.ceiling_a = result
        self.rows.append(
            rep.measured(
                "ceiling (a)",
                f"PostgreSQL INSERT … ON CONFLICT DO NOTHING, {n} connections",
                result,
                "rows/s",
                reference=HANDBOOK_PG_INSERT,
            )
        )
        return result

    async def ceiling_gateway(self) -> LoadResult:
        n, seconds = self.args.ceiling_clients, self.args.duration
        clients = [GraphQLClient(self.url) for _ in range(n)]
        body = GraphQLClient.body("{ __typename }")

        async def typename(worker: int) -> None:
            await clients[worker].post(body)

        async with self.phase(f"ceiling (b): {{ __typename }} through the gateway, {n} clients", seconds) as tick:
            result = await closed_loop(
                "typename", typename, concurrency=n, duration=seconds, max_requests=MAX_REQUESTS, on_progress=tick
            )
        for client in clients:
            await client.aclose()
        self.rows.append(
            rep.measured(
                "ceiling (b)",
                f"{{ __typename }} through the gateway, {n} clients",
                result,
                "req/s",
                reference=HANDBOOK_TYPENAME,
            )
        )
        return result

    # --- the write path ------------------------------------------------------------------------
    def pick_idea(self, voter: Voter, exclude: set[int] | frozenset[int] = frozenset()) -> int | None:
        """A Zipf-distributed idea this voter may vote on and has no vote on yet."""
        ds = self.ds
        assert ds is not None
        for _ in range(200):
            idea = ds.zipf_idea(self.rng)
            if idea not in voter.voted and idea not in exclude and ds.accepts_votes_from(idea, voter.index):
                return idea
        start = self.rng.randrange(len(ds.ideas))
        for k in range(len(ds.ideas)):
            idea = (start + k) % len(ds.ideas)
            if idea not in voter.voted and idea not in exclude and ds.accepts_votes_from(idea, voter.index):
                return idea
        return None

    async def cast(self, voter: Voter, idea: int, client: GraphQLClient | None = None) -> int:
        assert self.ds is not None
        weight = self.rng.choice((1, 2, 3))
        voter.voted.add(idea)  # a failed cast may still have landed: never vote on it again
        await (client or voter.client).post(
            GraphQLClient.body(CAST, {"id": idea_gid(self.ds.ideas[idea].id), "w": weight})
        )
        return weight

    async def write_path(self) -> LoadResult:
        n, seconds = len(self.voters), self.args.duration
        mark = self.cpu_mark()
        xacts = await self.transactions()

        async def vote(worker: int) -> None:
            voter = self.voters[worker]
            idea = self.pick_idea(voter)
            if idea is None:
                raise RequestError("NO_IDEA_LEFT")
            await self.cast(voter, idea)

        async with self.phase(f"write path: castVote, {n} stakeholders, Zipf ideas", seconds) as tick:
            result = await closed_loop(
                "castVote", vote, concurrency=n, duration=seconds, max_requests=MAX_REQUESTS, on_progress=tick
            )
        drained = await self.drain("write phase")
        spent = self.cpu_since(mark)
        await asyncio.sleep(0.6)  # pg_stat_database is flushed by the backends at most every 0.5 s or so
        xacts_after = await self.transactions()
        if result.ok:
            self.notes.append(
                "PostgreSQL transactions per vote (write phase until caught up, the bench's own checks included): "
                + ", ".join(f"{k} {(xacts_after.get(k, 0) - xacts.get(k, 0)) / result.ok:.1f}" for k in SERVICES)
            )
        votes = max(1, result.ok)
        self.cpu_per_vote = {name: spent.get(name, 0.0) / votes * 1000 for name in GROUPS}
        ceiling = self.ceiling_a.rate if self.ceiling_a is not None else 0.0
        ratio = result.rate / ceiling if ceiling > 0 else 0.0
        self.rows.append(
            rep.measured(
                "write",
                f"castVote, {n} clients (distinct stakeholders), Zipf ideas",
                result,
                "votes/s",
                ratio=ratio,
                target=f"≥ {WRITE_RATIO:.2f} x (a), p99 ≤ {WRITE_P99_MS:.0f} ms",
                passed=ratio >= WRITE_RATIO and result.p99_ms <= WRITE_P99_MS and result.ok > 0,
            )
        )
        self.rows.append(rep.Row("write", "projections caught up after the write phase", drained, "s"))
        if result.error_codes:
            self.notes.append("write path errors by code: " + rep.by_code(result.error_codes))
        return result

    # --- propagation ---------------------------------------------------------------------------
    def watched_ideas(self, count: int) -> list[int]:
        """Public OPEN ideas of middling popularity (not the hottest rows)."""
        ds = self.ds
        assert ds is not None
        ranked = ds.by_rank
        start = min(len(ranked) // 10, 100)
        picked = [i for i in ranked[start:] if ds.ideas[i].status == "OPEN" and not ds.ideas[i].visible_to]
        return picked[:count]

    async def propagation(self, max_rate: float) -> None:
        assert self.ds is not None
        ds = self.ds
        rate = max(1.0, max_rate / 2)
        seconds = self.args.duration
        watched = self.watched_ideas(self.args.watched)
        watched_set = frozenset(watched)
        ws = await GraphQLWS(self.url, self.readers[0]).connect()
        poll_clients = {i: GraphQLClient(self.url, self.readers[0]) for i in watched}
        probe_clients = {v.index: GraphQLClient(self.url, v.token) for v in self.voters}
        subscriptions: dict[int, Subscription] = {}
        scores: dict[int, int] = {}
        busy: set[int] = set()
        # An idea whose last probe failed is not probed again: its score is no longer known exactly.
        retired: set[int] = set()
        poll_rec, sub_rec = Recorder(), Recorder()
        background = Recorder()

        async def score_now(idea: int) -> int:
            data = await poll_clients[idea](POLL, id=idea_gid(ds.ideas[idea].id))
            return int(data["idea"]["score"])

        async def probe(idea: int, record: bool = True) -> None:
            busy.add(idea)
            try:
                voters = [v for v in self.voters if idea not in v.voted]
                if not voters:
                    return
                voter = self.rng.choice(voters)
                try:
                    weight = await self.cast(voter, idea, probe_clients[voter.index])
                except Exception as exc:  # counted, not fatal
                    code = exc.code if isinstance(exc, RequestError) else type(exc).__name__
                    retired.add(idea)
                    if record:
                        poll_rec.error(code)
                        sub_rec.error(code)
                    return
                t0 = time.perf_counter()
                target = scores[idea] + weight
                gid = idea_gid(ds.ideas[idea].id)
                poll_body = GraphQLClient.body(POLL, {"id": gid})

                async def by_poll() -> float:
                    while True:
                        data = await poll_clients[idea].post(poll_body)
                        if int(data["idea"]["score"]) >= target:
                            return time.perf_counter() - t0
                        await asyncio.sleep(POLL_INTERVAL)

                async def by_subscription() -> float:
                    while True:
                        arrived, data = await subscriptions[idea].next(PROBE_TIMEOUT)
                        changed = data.get("ideaChanged") or {}
                        if int(changed.get("score", -1)) >= target:
                            return max(0.0, arrived - t0)

                outcomes = await asyncio.gather(
                    asyncio.wait_for(by_poll(), PROBE_TIMEOUT),
                    asyncio.wait_for(by_subscription(), PROBE_TIMEOUT),
                    return_exceptions=True,
                )
                for recorder, outcome in zip((poll_rec, sub_rec), outcomes, strict=True):
                    if not record:
                        continue
                    if isinstance(outcome, BaseException):
                        recorder.error("TIMEOUT" if isinstance(outcome, TimeoutError) else type(outcome).__name__)
                    else:
                        recorder.ok(outcome)
                if any(isinstance(outcome, BaseException) for outcome in outcomes):
                    retired.add(idea)
                scores[idea] = target
            finally:
                busy.discard(idea)

        async with self.phase(f"propagation: subscribe to {len(watched)} ideas and warm up"):
            for idea in watched:
                scores[idea] = await score_now(idea)
                subscriptions[idea] = await ws.subscribe(WATCH, {"id": idea_gid(ds.ideas[idea].id)})
            await asyncio.sleep(0.5)
            await asyncio.gather(*(probe(idea, record=False) for idea in watched))

        async def tick_op(n: int) -> None:
            # At most `--probes` probes at a time: each one polls idea(id) until the new score shows,
            # and 8 pollers at once were a load of their own (hundreds of reads per second) that
            # slowed the very propagation they measured.
            free = [i for i in watched if i not in busy and i not in retired] if len(busy) < self.args.probes else []
            if free:
                await probe(self.rng.choice(free))
                return
            voter = self.voters[n % len(self.voters)]
            idea = self.pick_idea(voter, exclude=watched_set)
            if idea is None:
                background.error("NO_IDEA_LEFT")
                return
            t0 = time.perf_counter()
            try:
                await self.cast(voter, idea)
                background.ok(time.perf_counter() - t0)
            except RequestError as exc:
                background.error(exc.code)

        async with self.phase(
            f"propagation: castVote at {rate:,.0f}/s (half the write path's), {len(watched)} ideas watched", seconds
        ) as tick:
            started, skipped = await paced_loop(
                tick_op, rate=rate, duration=seconds, max_in_flight=4 * len(self.voters), on_progress=tick
            )
        await ws.close()
        for client in [*poll_clients.values(), *probe_clients.values()]:
            await client.aclose()
        await self.drain("propagation phase")
        target = f"p99 ≤ {PROPAGATION_P99_MS:.0f} ms"
        for name, recorder in (("poll idea(id)", poll_rec), ("ideaChanged subscription", sub_rec)):
            result = LoadResult.of(name, recorder, seconds)
            self.rows.append(
                rep.measured(
                    "propagation",
                    f"castVote answer → new score via {name}, at {rate:,.0f} votes/s",
                    result,
                    "probes/s",
                    rate=result.ok / seconds,
                    target=target,
                    passed=result.ok > 0 and result.p99_ms <= PROPAGATION_P99_MS,
                    client_cpu=False,
                )
            )
        for name, recorder in (("poll", poll_rec), ("subscription", sub_rec)):
            if recorder.errors:
                self.notes.append(f"propagation ({name}) errors by code: " + rep.by_code(recorder.errors))
        if skipped:
            self.notes.append(
                f"propagation phase: {skipped} of {started + skipped} paced votes skipped (too many in flight)"
            )
        if background.errors:
            self.notes.append("propagation phase background votes, errors by code: " + rep.by_code(background.errors))

    # --- the read path -------------------------------------------------------------------------
    async def read_path(self, ceiling: LoadResult) -> None:
        n, seconds = len(self.readers), self.args.duration
        clients = [GraphQLClient(self.url, token) for token in self.readers]
        mark = self.cpu_mark()
        reads = 0
        for name, variables in READS:
            body = GraphQLClient.body(READ, variables)

            async def read(worker: int, body: bytes = body) -> None:
                data = await clients[worker].post(body)
                if not data.get("ideas", {}).get("edges"):
                    raise RequestError("EMPTY_PAGE")

            async with self.phase(f"read path: {name}, {n} clients", seconds) as tick:
                result = await closed_loop(
                    name, read, concurrency=n, duration=seconds, max_requests=MAX_REQUESTS, on_progress=tick
                )
            reads += result.ok
            ratio = result.rate / ceiling.rate if ceiling.rate > 0 else 0.0
            self.rows.append(
                rep.measured(
                    "read",
                    f"{name}, first 20, {n} clients",
                    result,
                    "req/s",
                    ratio=ratio,
                    target=f"≥ {READ_RATIO:.2f} x (b), p99 ≤ {READ_P99_MS:.0f} ms",
                    passed=ratio >= READ_RATIO and result.p99_ms <= READ_P99_MS and result.ok > 0,
                )
            )
            if result.error_codes:
                self.notes.append(f"{name} errors by code: " + rep.by_code(result.error_codes))
        spent = self.cpu_since(mark)
        self.cpu_per_read = {name: spent.get(name, 0.0) / max(1, reads) * 1000 for name in GROUPS}
        for client in clients:
            await client.aclose()

    # --- report --------------------------------------------------------------------------------
    def floors(self) -> list[str]:
        """Whether a ratio target can be met on this machine at all: the best rate each path
        could reach if everything but one part of it cost nothing."""
        cores = os.cpu_count() or 1
        ceilings = {row.phase: row.rate for row in self.rows if row.phase.startswith("ceiling") and row.rate}
        notes = []
        postgres = self.cpu_per_vote.get("postgres")
        if postgres and ceilings.get("ceiling (a)"):
            best = cores * 1000 / postgres
            notes.append(
                f"floor (write): PostgreSQL alone spends {postgres:.2f} ms CPU per vote (the vote and its outbox row, "
                f"the relay, the projections); with every Python process free, {cores} cores allow at most "
                f"{best:,.0f} votes/s = {best / ceilings['ceiling (a)']:.2f} x ceiling (a) (target {WRITE_RATIO:.2f})"
            )
        if ceilings.get("ceiling (b)"):
            ms, fields = graphql_execution_floor(READ, {"sort": "TOP"})
            best = cores * 1000 / ms
            notes.append(
                f"floor (read): graphql-core alone executing the read query ({fields} fields, over in-memory data) "
                f"costs {ms:.2f} ms CPU per page; with HTTP, strawberry, the services and PostgreSQL free, {cores} "
                f"cores allow at most {best:,.0f} pages/s = {best / ceilings['ceiling (b)']:.2f} x ceiling (b) "
                f"(target {READ_RATIO:.2f})"
            )
        return notes

    def report(self, started: datetime, machine: dict[str, str]) -> rep.Report:
        resources = []
        for name in GROUPS:
            rest = self.rest.get(name, 0.0)
            target, passed = "", None
            if name in SERVICES:
                target, passed = f"≤ {SERVICE_RSS_MB:.0f} MB at rest", rest <= SERVICE_RSS_MB
            resources.append(
                rep.ResourceRow(
                    name,
                    rest,
                    max(rest, self.sampler.peaks.get(name, 0.0)),
                    self.cpu_per_vote.get(name, 0.0),
                    self.cpu_per_read.get(name, 0.0),
                    target,
                    passed,
                )
            )
        platform_cpu = {k: v for k, v in self.cpu_per_vote.items() if k in PYTHON_GROUPS | {"postgres", "nats"}}
        if platform_cpu:
            costliest = max(platform_cpu, key=lambda k: platform_cpu[k])
            self.notes.insert(
                0,
                f"costliest hop per vote: {costliest} ({platform_cpu[costliest]:.2f} CPU s per "
                "1,000 votes, write phase until the projections caught up)",
            )
            total = sum(platform_cpu.values())
            cores = os.cpu_count() or 1
            self.notes.insert(
                1,
                f"platform CPU per vote, all its processes: {total:.1f} ms, so {cores} cores cap the write path near "
                f"{cores * 1000 / total if total else 0:,.0f} votes/s however the work is spread",
            )
        read_cpu = {k: v for k, v in self.cpu_per_read.items() if k in PYTHON_GROUPS | {"postgres", "nats"}}
        if read_cpu and sum(read_cpu.values()) > 0:
            top = sorted(read_cpu, key=lambda k: read_cpu[k], reverse=True)[:3]
            total = sum(read_cpu.values())
            self.notes.insert(
                2,
                f"platform CPU per read request (average of the read phases): {total:.1f} ms; most in "
                + ", ".join(f"{k} {read_cpu[k]:.1f} ms" for k in top),
            )
        self.notes[3:3] = self.floors()
        load = os.getloadavg()[0]
        cores = os.cpu_count() or 1
        if float(machine["load"].split()[0]) > cores / 2 or load > cores:
            self.notes.append(
                f"the machine was shared: load average {machine['load'].split()[0]} at the start and {load:.2f} at the "
                f"end on {cores} cores (other processes were running): the figures are pessimistic"
            )
        for row in self.rows:
            if row.phase == "ceiling (a)" and row.rate:
                self.notes.append(
                    f"sanity: ceiling (a) is {row.rate / HANDBOOK_PG_TPS:.2f} x the handbook's "
                    f"~{HANDBOOK_PG_TPS:,} tps (pgbench INSERT … ON CONFLICT, same kind of machine)"
                )
            if row.phase == "ceiling (b)" and row.rate:
                self.notes.append(
                    f"sanity: ceiling (b) is {row.rate / HANDBOOK_TYPENAME_RPS:.2f} x the handbook's "
                    f"~{HANDBOOK_TYPENAME_RPS:,} req/s (strawberry's ASGI app, trivial query); here the load generator "
                    f"(httpx, {row.client_cpu_ms or 0:.2f} ms CPU per request) shares the 2 cores with the gateway"
                )
        warnings = platform_warnings(self.stack.lines)
        if warnings:
            self.notes.append(
                "platform log warnings/errors during the run: "
                + ", ".join(f"{name} x{count}" for name, count in warnings.most_common(12))
            )
        seeding = {**asdict(self.seed_report), "total_seconds": self.seed_report.total_seconds}
        settings = {
            "scale": f"{self.args.scale:g}",
            "phase duration": f"{self.args.duration:g} s",
            "WORKERS": str(self.args.workers or 1),
            "REPLICAS": str(self.args.replicas or 1),
            "dataset": self.dataset_summary,
        }
        return rep.Report(
            started=started,
            machine=machine,
            settings=settings,
            seeding=seeding,
            rows=self.rows,
            resources=resources,
            notes=self.notes,
        )

    async def close(self) -> None:
        for conn in self.monitors.values():
            with contextlib.suppress(Exception):
                await conn.close()
        for voter in self.voters:
            with contextlib.suppress(Exception):
                await voter.client.aclose()


def platform_warnings(lines: list[str]) -> Counter[str]:
    """'<process> <event>' of the JSON log lines at warning level or above (honcho prefixes
    each line with the time and the process name)."""
    found: Counter[str] = Counter()
    for line in list(lines):
        process, sep, rest = line.partition("| ")
        if not sep or not rest.startswith("{"):
            continue
        try:
            entry = orjson.loads(rest)
        except orjson.JSONDecodeError:
            continue
        if isinstance(entry, dict) and entry.get("level") in ("warning", "error", "critical"):
            found[f"{process.split()[-1] if process.split() else '?'} {entry.get('event')}"] += 1
    return found


async def main_async(args: argparse.Namespace, console: Console) -> rep.Report:
    bench = Bench(args, console)
    try:
        return await bench.run()
    finally:
        bench.sampler.stop()
        await bench.close()
        await asyncio.to_thread(bench.stack.stop)
        if not args.keep_data:
            shutil.rmtree(bench.data_dir, ignore_errors=True)
        else:
            console.print(f"data kept in {bench.data_dir}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console()
    if not console.is_terminal:  # a log: wide enough for the tables
        console = Console(width=220)
    t0 = time.perf_counter()
    try:
        import uvloop

        report = uvloop.run(main_async(args, console))
    except KeyboardInterrupt:
        console.print("interrupted")
        return 130
    report.notes.append(f"whole run {time.perf_counter() - t0:.0f} s")
    rep.render(report, console)
    rep.write_benchmarks(args.output, rep.markdown(report))
    console.print(f"results written to {args.output}")
    if args.json is not None:
        args.json.write_bytes(orjson.dumps(report.to_json(), option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
