"""Fault injection under load: kill -9 nats-server, a consumer (ideas), the votes service in the
middle of its requests, and crash-restart PostgreSQL, while 50 stakeholders vote, withdraw and
comment on 20 ideas through the gateway. After each fault: nothing acknowledged is lost or
duplicated, nothing hangs, no 5xx, and once settled every projection equals its source.

One cluster for the module; the scenarios run one after the other on it, each ending with the
platform settled and checked, so the next one starts from a verified state."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field

import pytest

from devstack.cluster import Cluster
from tests.resilience.conftest import running_cluster
from tests.resilience.report import RESULTS
from tests.resilience.support import (
    KINDS,
    Api,
    Outcome,
    Person,
    pk_of,
    propose,
    query,
    register_many,
    settle,
    wait_known,
)

pytestmark = pytest.mark.slow

VOTERS = 50
IDEAS = 20
OPS_PER_SCENARIO = 600  # 4 scenarios: 2,400 calls in all
FAULT_AT = 0.25  # share of the stream sent before the fault
HOLD_BACK = 0.85  # the rest waits for the restart, so that part of every stream runs after recovery
DOWN_SECONDS = 3.0
STREAM_DEADLINE = 120.0
RETRIES = 4
CAST = "mutation($i: ID!, $w: Int) { castVote(ideaId: $i, weight: $w) { weight } }"
WITHDRAW = "mutation($i: ID!) { withdrawVote(ideaId: $i) }"
COMMENT = "mutation($i: ID!, $b: String!) { addComment(ideaId: $i, body: $b) { id } }"
READ = "query($i: ID!) { idea(id: $i) { score voters commentCount } }"
RETRYABLE_LABELS = frozenset({"UNAVAILABLE", "HTTP 503 UNAVAILABLE"})


@dataclass
class World:
    cluster: Cluster
    api: Api
    voters: list[Person]
    ideas: list[str]  # global ids
    # (voter index, idea index) -> the values the vote may have: {weight} or {None}; several
    # when a call failed without an answer (it may or may not have been applied).
    votes: dict[tuple[int, int], set[int | None]] = field(default_factory=dict)
    # comment attempt marker -> the comment id acknowledged (None: the attempt failed)
    comments: dict[str, uuid.UUID | None] = field(default_factory=dict)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with running_cluster("faults") as c:
        yield c


@pytest.fixture(scope="module")
async def world(cluster: Cluster) -> AsyncIterator[World]:
    api = Api(cluster.graphql_url)
    voters = await register_many(api, [KINDS[i % 4] for i in range(VOTERS)], "voter")
    ideas = [await propose(api, voters[i], f"Fault idea {i}") for i in range(IDEAS)]
    await wait_known(cluster, [pk_of(i) for i in ideas])
    world = World(cluster, api, voters, ideas)
    world.votes = {(v, i): {None} for v in range(VOTERS) for i in range(IDEAS)}
    yield world
    await api.aclose()


@dataclass
class Stream:
    """One scenario's calls: counts, and the budget shared by the stakeholders."""

    total: int
    fault_due: asyncio.Event = field(default_factory=asyncio.Event)
    fault_done: asyncio.Event = field(default_factory=asyncio.Event)
    sent: int = 0
    acknowledged: int = 0
    labels: Counter[str] = field(default_factory=Counter)
    during_outage: Counter[str] = field(default_factory=Counter)
    wrong_answers: list[str] = field(default_factory=list)
    outage: tuple[float, float] | None = None
    down_since: float | None = None
    # refusals outside the outage window (what they said), to tell them apart
    outside: Counter[str] = field(default_factory=Counter)

    async def take(self, deadline: float) -> bool:
        """One more call may go, or False when the stream is over (all sent, or past its deadline).
        Past the held-back share, calls wait for the restart (the fault's end, an event)."""
        if self.sent >= self.total * HOLD_BACK and not self.fault_done.is_set():
            try:
                await asyncio.wait_for(self.fault_done.wait(), timeout=max(deadline - time.monotonic(), 0))
            except TimeoutError:
                return False
        if time.monotonic() > deadline or self.sent >= self.total:
            return False
        self.sent += 1
        if self.sent >= self.total * FAULT_AT:
            self.fault_due.set()
        return True

    def count(self, outcome: Outcome) -> None:
        self.labels[outcome.label] += 1
        if outcome.ok:
            self.acknowledged += 1
        if self.down_since is not None:
            self.during_outage[outcome.label] += 1
        elif not outcome.ok:
            message = outcome.errors[0].get("message", "") if outcome.errors else outcome.text[:80]
            self.outside[f"{outcome.label}: {message}"] += 1


async def one_call(world: World, stream: Stream, voter: int, op: tuple[str, int, int]) -> Outcome:
    """One attempt of `op`, counted, with the ledger updated."""
    kind, idea, weight = op
    person, idea_id = world.voters[voter], world.ideas[idea]
    key = (voter, idea)
    if kind == "cast":
        outcome = await world.api(CAST, {"i": idea_id, "w": weight}, token=person.token)
        if outcome.ok:
            if outcome.data["castVote"]["weight"] != weight:
                stream.wrong_answers.append(f"cast {key} answered {outcome.data}")
            world.votes[key] = {weight}
        elif maybe_applied(outcome):
            world.votes[key].add(weight)
    elif kind == "withdraw":
        before = world.votes[key]
        outcome = await world.api(WITHDRAW, {"i": idea_id}, token=person.token)
        if outcome.ok:
            removed = outcome.data["withdrawVote"]
            if len(before) == 1 and removed != (next(iter(before)) is not None):
                stream.wrong_answers.append(f"withdraw {key} answered {removed}, ledger {before}")
            world.votes[key] = {None}
        elif maybe_applied(outcome):
            world.votes[key].add(None)
    elif kind == "comment":
        marker = f"res-{uuid.uuid4().hex}"
        outcome = await world.api(COMMENT, {"i": idea_id, "b": f"{marker} says hello"}, token=person.token)
        world.comments[marker] = pk_of(outcome.data["addComment"]["id"]) if outcome.ok else None
    else:
        outcome = await world.api(READ, {"i": idea_id}, token=person.token)
    stream.count(outcome)
    return outcome


def maybe_applied(outcome: Outcome) -> bool:
    """A refusal with a code other than UNAVAILABLE applied nothing; anything else might have."""
    return outcome.retryable or outcome.server_error or not outcome.codes


async def stakeholder(world: World, stream: Stream, voter: int, deadline: float, seed: int) -> None:
    rng = random.Random(seed * 1000 + voter)
    while True:
        draw = rng.random()
        idea = rng.randrange(IDEAS)
        kind = "cast" if draw < 0.45 else "withdraw" if draw < 0.65 else "comment" if draw < 0.92 else "read"
        op = (kind, idea, rng.randint(1, 3))
        for attempt in range(RETRIES + 1):
            if not await stream.take(deadline):
                return
            outcome = await one_call(world, stream, voter, op)
            if not outcome.retryable or attempt == RETRIES:
                break
            await asyncio.sleep(0.2 * 2**attempt + rng.random() * 0.1)


async def run_stream(world: World, fault: Callable[[], None], recover: Callable[[], None], seed: int) -> Stream:
    stream = Stream(OPS_PER_SCENARIO)
    deadline = time.monotonic() + STREAM_DEADLINE

    async def inject() -> None:
        try:
            await asyncio.wait_for(stream.fault_due.wait(), timeout=STREAM_DEADLINE)
            stream.down_since = time.monotonic()
            await asyncio.to_thread(fault)
            await asyncio.sleep(DOWN_SECONDS)
            await asyncio.to_thread(recover)
            stream.outage = (stream.down_since, time.monotonic())
            stream.down_since = None
        finally:
            stream.fault_done.set()

    injector = asyncio.create_task(inject())
    await asyncio.gather(*(stakeholder(world, stream, v, deadline, seed) for v in range(VOTERS)))
    await injector
    return stream


async def verify(world: World, stream: Stream, scenario: str) -> None:
    """Settle, compare the databases with the ledger, record the row, then assert."""
    state, settle_time = await settle(world.cluster)
    voter_pks = [p.pk for p in world.voters]
    idea_pks = [pk_of(i) for i in world.ideas]
    rows = await query(
        world.cluster,
        "votes",
        "SELECT idea_id, voter_id, weight FROM vote WHERE voter_id = ANY($1) AND idea_id = ANY($2)",
        voter_pks,
        idea_pks,
    )
    voter_index = {pk: i for i, pk in enumerate(voter_pks)}
    idea_index = {pk: i for i, pk in enumerate(idea_pks)}
    stored: dict[tuple[int, int], list[int]] = {}
    for r in rows:
        stored.setdefault((voter_index[r["voter_id"]], idea_index[r["idea_id"]]), []).append(r["weight"])
    lost: list[str] = []
    duplicated: list[str] = []
    for key, candidates in world.votes.items():
        values = stored.get(key, [])
        if len(values) > 1:
            duplicated.append(f"vote {key}: {values}")
        actual = values[0] if values else None
        if actual not in candidates:
            lost.append(f"vote {key}: stored {actual}, ledger allows {candidates}")
        world.votes[key] = {actual}  # settled: this is now the known state
    markers = [m for m in world.comments]
    comment_rows = await query(
        world.cluster,
        "comments",
        "SELECT id, split_part(body, ' ', 1) AS marker FROM comment WHERE split_part(body, ' ', 1) = ANY($1)",
        markers,
    )
    by_marker: dict[str, list[uuid.UUID]] = {}
    for r in comment_rows:
        by_marker.setdefault(r["marker"], []).append(r["id"])
    applied_unacknowledged = 0
    for marker, acknowledged in world.comments.items():
        ids = by_marker.get(marker, [])
        if len(ids) > 1:
            duplicated.append(f"comment {marker}: {len(ids)} rows")
        if acknowledged is not None and ids != [acknowledged]:
            lost.append(f"comment {marker}: acknowledged {acknowledged}, stored {ids}")
        if acknowledged is None and ids:
            applied_unacknowledged += 1
    world.comments.clear()

    unexpected = {k: v for k, v in stream.labels.items() if k != "ok" and k not in RETRYABLE_LABELS}
    server_errors = sum(v for k, v in stream.labels.items() if k.startswith("HTTP 5") and "UNAVAILABLE" not in k)
    server_errors += stream.labels.get("INTERNAL", 0)
    hangs = stream.labels.get("HANG", 0)
    passed = (
        state.settled
        and not lost
        and not duplicated
        and not unexpected
        and not stream.wrong_answers
        and server_errors == 0
        and hangs == 0
    )
    outage = f"{stream.outage[1] - stream.outage[0]:.1f} s" if stream.outage else "?"
    RESULTS.record(
        "faults",
        scenario,
        {
            "scenario": scenario,
            "operations sent": stream.sent,
            "acknowledged": stream.acknowledged,
            "errors by code": {k: v for k, v in stream.labels.items() if k != "ok"} or "none",
            "lost": len(lost),
            "duplicated": len(duplicated),
            "5xx": server_errors,
            "hangs": hangs,
            "wrong answers": len(stream.wrong_answers),
            "unacknowledged but applied": applied_unacknowledged,
            "time to consistent (s)": round(settle_time, 1),
            "result": "pass" if passed else "FAIL",
            "notes": (
                f"outage {outage}; answers while down: {dict(stream.during_outage) or 'none'}; "
                f"refusals outside the outage: {dict(stream.outside) or 'none'}; "
                f"{state.published} events published so far (all services), {state.stream_messages} in the streams"
                + ("" if state.settled else f"; NOT SETTLED: {state.summary()}")
            ),
        },
    )
    assert state.settled, f"not consistent after settling: {state.summary()}"
    assert not lost, lost[:20]
    assert not duplicated, duplicated[:20]
    assert not stream.wrong_answers, stream.wrong_answers[:20]
    assert server_errors == 0 and hangs == 0, dict(stream.labels)
    assert not unexpected, f"errors that are not the retryable UNAVAILABLE: {unexpected}"
    assert stream.sent >= OPS_PER_SCENARIO * 0.95, f"the stream did not finish in time: {stream.sent} calls"


async def test_a_nats_server_killed_and_restarted(world: World) -> None:
    c = world.cluster
    stream = await run_stream(world, c.kill_nats, c.start_nats, seed=1)
    await verify(world, stream, "(a) kill -9 nats-server, restart")


async def test_b_consumer_service_killed_and_restarted(world: World) -> None:
    c = world.cluster
    stream = await run_stream(world, lambda: c.kill("ideas"), lambda: c.restart("ideas"), seed=2)
    await verify(world, stream, "(b) kill -9 ideas (a consumer), restart")


async def test_c_votes_service_killed_mid_request(world: World) -> None:
    c = world.cluster
    stream = await run_stream(world, lambda: c.kill("votes"), lambda: c.restart("votes"), seed=3)
    await verify(world, stream, "(c) kill -9 votes mid-request, restart")
    assert stream.during_outage.get("ok", 0) < sum(stream.during_outage.values()), "the kill met no call"


async def test_d_postgres_crash_restart(world: World) -> None:
    c = world.cluster

    def crash() -> None:
        assert c.infra.postgres is not None
        c.infra.postgres.stop(mode="immediate")

    def start() -> None:
        assert c.infra.postgres is not None
        c.infra.postgres.start()

    stream = await run_stream(world, crash, start, seed=4)
    await verify(world, stream, "(d) PostgreSQL stopped -m immediate, restarted")
