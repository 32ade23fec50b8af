"""Redelivery, duplication and ordering, in-process: the ideas and votes services on databases of
their own, their background relay and consumers stopped, so the test decides which event reaches
which consumer, when, and how often (through `ConsumerRunner.apply`: inbox row and effect in one
transaction, exactly what a JetStream delivery runs).

- the same event delivered twice changes state once;
- vote events applied in any order give the same tally (deltas commute); idea status changes out
  of order are retried until they apply in order;
- a merge delivered twice moves the votes once;
- a hypothesis state machine casts, changes, withdraws, merges, delivers and redelivers events in
  any order and checks after every step: projection + deltas of undelivered events == source."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import text

from devstack.testing import stop_messaging
from services.ideas.consumers import SUBSCRIPTIONS as IDEAS_SUBSCRIPTIONS
from services.votes.consumers import SUBSCRIPTIONS as VOTES_SUBSCRIPTIONS
from shared.auth import TokenIssuer
from shared.events.catalogue import VoteCast, VoteChanged, VotesMoved, VoteWithdrawn, payload_model, subject_of
from shared.events.envelope import Envelope
from tests.resilience.report import RESULTS

pytestmark = pytest.mark.slow

T = TypeVar("T")
KINDS = ("CUSTOMER", "SUPPLIER", "PARTNER", "EMPLOYEE")
TALLY = [f"{what}_{k.lower()}" for k in KINDS for what in ("voters", "weight")]
# event type -> (durable, handler) of the consumer under test that handles it
ROUTES: dict[str, tuple[str, Any]] = {
    subject: (sub.durable, handler)
    for sub in [*IDEAS_SUBSCRIPTIONS, *VOTES_SUBSCRIPTIONS]
    if sub.durable in ("ideas-votes", "votes-ideas")
    for subject, handler in sub.subjects.items()
}


@dataclass
class Person:
    id: uuid.UUID
    kind: str
    headers: dict[str, str]


@dataclass
class Pair:
    """The ideas and votes services, in-process, messaging stopped."""

    ideas: FastAPI
    ideas_http: httpx.AsyncClient
    votes: FastAPI
    votes_http: httpx.AsyncClient
    tokens: TokenIssuer
    seen: set[uuid.UUID] = field(default_factory=set)

    def caller(self, kind: str = "CUSTOMER", role: str = "MEMBER") -> Person:
        pk = uuid.uuid4()
        return Person(pk, kind, {"Authorization": f"Bearer {self.tokens.issue(pk, kind, role)}"})

    def app_for(self, envelope: Envelope) -> FastAPI:
        return self.ideas if ROUTES[envelope.type][0] == "ideas-votes" else self.votes

    async def new_events(self, about: set[uuid.UUID]) -> list[Envelope]:
        """Outbox rows of both services about these ideas, not seen before, oldest first; only
        the types the two consumers under test handle."""
        found: list[Envelope] = []
        for app in (self.ideas, self.votes):
            async with app.state.runtime.engine.connect() as conn:
                rows = await conn.execute(text("SELECT id, payload FROM outbox ORDER BY created_at"))
                for row in rows:
                    if row.id in self.seen:
                        continue
                    envelope = Envelope.model_validate_json(row.payload)
                    if envelope.type in ROUTES and uuid.UUID(envelope.subject_id) in about:
                        self.seen.add(row.id)
                        found.append(envelope)
        return found

    async def deliver(self, envelope: Envelope) -> bool:
        """Apply one delivery; True the first time, False for a duplicate. Raises what the handler
        raises (a transient refusal: the event stays pending, as a nak would keep it)."""
        durable, handler = ROUTES[envelope.type]
        payload = payload_model(envelope.type).model_validate(envelope.data)
        runner = self.app_for(envelope).state.runtime.consumers
        return bool(await runner.apply(durable, envelope, payload, handler))

    async def propose(self, author: Person, title: str = "An idea") -> uuid.UUID:
        r = await self.ideas_http.post("/ideas", json={"title": title, "body": "body"}, headers=author.headers)
        assert r.status_code == 201, r.text
        idea_id = uuid.UUID(r.json()["id"])
        for envelope in await self.new_events({idea_id}):
            assert await self.deliver(envelope)
        return idea_id

    async def snapshot(self, ideas: list[uuid.UUID]) -> dict[str, Any]:
        """Projection, source and idea states of these ideas."""
        async with self.ideas.state.runtime.engine.connect() as conn:
            projection = {
                r.id: dict(r._mapping)
                for r in await conn.execute(
                    text(
                        f"SELECT id, voters, score, status, merged_into_id, {', '.join(TALLY)} "
                        "FROM idea WHERE id = ANY(:i)"
                    ),
                    {"i": ideas},
                )
            }
        async with self.votes.state.runtime.engine.connect() as conn:
            votes = sorted(
                (r.idea_id, r.voter_id, r.voter_kind, r.weight)
                for r in await conn.execute(
                    text("SELECT idea_id, voter_id, voter_kind, weight FROM vote WHERE idea_id = ANY(:i)"), {"i": ideas}
                )
            )
            states = {
                r.idea_id: (r.status, r.merged_into_id)
                for r in await conn.execute(
                    text("SELECT idea_id, status, merged_into_id FROM idea_state WHERE idea_id = ANY(:i)"), {"i": ideas}
                )
            }
        return {"projection": projection, "votes": votes, "states": states}


def tally_of(
    votes: list[tuple[uuid.UUID, uuid.UUID, str, int]], ideas: list[uuid.UUID]
) -> dict[uuid.UUID, Counter[str]]:
    out = {i: Counter() for i in ideas}
    for idea_id, _, kind, weight in votes:
        c = out[idea_id]
        c["voters"] += 1
        c["score"] += weight
        c[f"voters_{kind.lower()}"] += 1
        c[f"weight_{kind.lower()}"] += weight
    return out


def pending_deltas(pending: list[Envelope]) -> dict[uuid.UUID, Counter[str]]:
    """What the undelivered vote events will add to the projection (computed here, from the
    event payloads, independently of the ideas service's code)."""
    out: dict[uuid.UUID, Counter[str]] = {}

    def add(idea: str, kind: str, voters: int, weight: int) -> None:
        c = out.setdefault(uuid.UUID(idea), Counter())
        c["voters"] += voters
        c["score"] += weight
        c[f"voters_{kind.lower()}"] += voters
        c[f"weight_{kind.lower()}"] += weight

    for e in pending:
        d = e.data
        if e.type == subject_of(VoteCast):
            add(d["idea_id"], d["voter_kind"], 1, d["weight"])
        elif e.type == subject_of(VoteChanged):
            add(d["idea_id"], d["voter_kind"], 0, d["new_weight"] - d["old_weight"])
        elif e.type == subject_of(VoteWithdrawn):
            add(d["idea_id"], d["voter_kind"], -1, -d["weight"])
        elif e.type == subject_of(VotesMoved):
            for m in d["moves"]:
                add(d["source_id"], m["voter_kind"], -1, -m["source_weight"])
                old = m["target_old_weight"]
                add(d["target_id"], m["voter_kind"], 1 if old is None else 0, m["target_new_weight"] - (old or 0))
    return out


def mismatches(snap: dict[str, Any], ideas: list[uuid.UUID], pending: list[Envelope]) -> list[str]:
    """projection + undelivered deltas == source aggregate, per idea and kind."""
    source = tally_of(snap["votes"], ideas)
    deltas = pending_deltas([e for e in pending if e.type.startswith("votes.")])
    out = []
    for idea_id in ideas:
        row = snap["projection"][idea_id]
        for column in ["voters", "score", *TALLY]:
            projected = row[column] + deltas.get(idea_id, Counter())[column]
            if projected != source[idea_id][column]:
                out.append(
                    f"{idea_id} {column}: projection {row[column]} + pending -> {projected} "
                    f"!= source {source[idea_id][column]}"
                )
    return out


@pytest.fixture
async def pair(service_app: Any, tokens: TokenIssuer) -> Pair:
    ideas, ideas_http = await service_app("ideas", database="resilience_ideas")
    votes, votes_http = await service_app("votes", database="resilience_votes")
    for app in (ideas, votes):
        await stop_messaging(app)  # relay and fetch loops end; `apply` stays usable
    return Pair(ideas, ideas_http, votes, votes_http, tokens)


# --- explicit cases ---------------------------------------------------------------------------------
async def test_the_same_vote_event_twice_counts_once(pair: Pair) -> None:
    idea = await pair.propose(pair.caller())
    voter = pair.caller("PARTNER")
    r = await pair.votes_http.put(f"/ideas/{idea}/vote", json={"weight": 3}, headers=voter.headers)
    assert r.status_code == 200, r.text
    (cast,) = await pair.new_events({idea})
    assert await pair.deliver(cast) is True
    before = await pair.snapshot([idea])
    assert await pair.deliver(cast) is False, "a redelivery is a no-op"
    assert await pair.deliver(Envelope.model_validate(cast.model_dump())) is False, "an equal copy too"
    after = await pair.snapshot([idea])
    assert before == after
    row = after["projection"][idea]
    assert (row["voters"], row["score"], row["voters_partner"], row["weight_partner"]) == (1, 3, 1, 3)
    RESULTS.record(
        "redelivery",
        "same-twice",
        {
            "case": "the same vote.cast delivered 3 times",
            "inputs tried": 3,
            "events applied": 1,
            "redeliveries (no-ops)": 2,
            "invariant checks": "tally once, state unchanged",
            "result": "pass",
        },
    )


async def test_vote_events_in_any_order_give_the_same_tally(pair: Pair) -> None:
    idea = await pair.propose(pair.caller())
    voter = pair.caller("SUPPLIER")
    for call in (
        pair.votes_http.put(f"/ideas/{idea}/vote", json={"weight": 1}, headers=voter.headers),
        pair.votes_http.put(f"/ideas/{idea}/vote", json={"weight": 3}, headers=voter.headers),
        pair.votes_http.delete(f"/ideas/{idea}/vote", headers=voter.headers),
        pair.votes_http.put(f"/ideas/{idea}/vote", json={"weight": 2}, headers=voter.headers),
    ):
        assert (await call).status_code == 200
    events = await pair.new_events({idea})
    assert [e.type.rsplit(".", 1)[1] for e in events] == ["cast", "changed", "withdrawn", "cast"]
    for envelope in reversed(events):  # newest first
        assert await pair.deliver(envelope)
    snap = await pair.snapshot([idea])
    assert mismatches(snap, [idea], []) == []
    row = snap["projection"][idea]
    assert (row["voters"], row["score"], row["weight_supplier"]) == (1, 2, 2)
    RESULTS.record(
        "redelivery",
        "reversed",
        {
            "case": "cast, changed, withdrawn, cast applied newest first",
            "inputs tried": 4,
            "events applied": 4,
            "redeliveries (no-ops)": 0,
            "invariant checks": "projection == source",
            "result": "pass",
        },
    )


async def test_idea_status_changes_out_of_order_wait_for_their_turn(pair: Pair) -> None:
    author, staff = pair.caller(), pair.caller("EMPLOYEE", "PRODUCT_TEAM")
    r = await pair.ideas_http.post("/ideas", json={"title": "Ordered", "body": "b"}, headers=author.headers)
    idea = uuid.UUID(r.json()["id"])
    for status in ("UNDER_REVIEW", "PLANNED"):
        r = await pair.ideas_http.post(f"/ideas/{idea}/status", json={"status": status}, headers=staff.headers)
        assert r.status_code == 200, r.text
    proposed, to_review, to_planned = await pair.new_events({idea})
    applied, refused = 0, 0
    for envelope in (to_planned, to_review, proposed, to_planned, to_review, to_planned):
        try:
            applied += await pair.deliver(envelope)
        except Exception:
            refused += 1  # transient: a nak, delivered again later
    snap = await pair.snapshot([idea])
    assert snap["states"][idea] == ("PLANNED", None)
    assert applied == 3
    RESULTS.record(
        "redelivery",
        "status-order",
        {
            "case": "status changes before their proposal / predecessor",
            "inputs tried": 6,
            "events applied": applied,
            "redeliveries (no-ops)": 6 - applied - refused,
            "invariant checks": f"{refused} refused as transient, final state PLANNED",
            "result": "pass",
        },
    )


async def test_a_merge_delivered_twice_moves_the_votes_once(pair: Pair) -> None:
    author, staff = pair.caller(), pair.caller("EMPLOYEE", "PRODUCT_TEAM")
    source, target = await pair.propose(author, "Source"), await pair.propose(author, "Target")
    both, only_source = pair.caller("CUSTOMER"), pair.caller("PARTNER")
    for who, idea, weight in ((both, source, 3), (both, target, 1), (only_source, source, 2)):
        assert (
            await pair.votes_http.put(f"/ideas/{idea}/vote", json={"weight": weight}, headers=who.headers)
        ).status_code == 200
    for envelope in await pair.new_events({source, target}):
        assert await pair.deliver(envelope)
    r = await pair.ideas_http.post(f"/ideas/{source}/merge", json={"target_id": str(target)}, headers=staff.headers)
    assert r.status_code == 200, r.text
    (merged,) = await pair.new_events({source, target})
    assert await pair.deliver(merged) is True
    assert await pair.deliver(merged) is False
    moved = await pair.new_events({source, target})
    assert [e.type for e in moved] == [subject_of(VotesMoved)], "one votes.moved, not two"
    for _ in range(2):
        await pair.deliver(moved[0])
    snap = await pair.snapshot([source, target])
    assert mismatches(snap, [source, target], []) == []
    target_row = snap["projection"][target]
    assert (target_row["voters"], target_row["score"]) == (2, 5), "max(3, 1) + 2"
    assert snap["projection"][source]["voters"] == 0
    RESULTS.record(
        "redelivery",
        "merge-twice",
        {
            "case": "idea.merged and votes.moved each delivered twice",
            "inputs tried": 4,
            "events applied": 2,
            "redeliveries (no-ops)": 2,
            "invariant checks": "votes moved once (higher weight kept), projection == source",
            "result": "pass",
        },
    )


# --- the state machine --------------------------------------------------------------------------------
STATS: Counter[str] = Counter()


class VotingMachine(RuleBasedStateMachine):
    """Set as class attributes before the run: `pair`, `loop` (where the apps live)."""

    pair: Pair
    loop: asyncio.AbstractEventLoop

    def __init__(self) -> None:
        super().__init__()
        self.ideas: list[uuid.UUID] = []
        self.voters: list[Person] = []
        self.staff: Person | None = None
        self.pending: list[Envelope] = []
        self.delivered: list[Envelope] = []

    def run(self, coro: Awaitable[T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)  # type: ignore[arg-type]

    def collect(self) -> None:
        self.pending += self.run(self.pair.new_events(set(self.ideas)))

    @initialize()
    def setup(self) -> None:
        author = self.pair.caller()
        self.staff = self.pair.caller("EMPLOYEE", "ADMIN")
        self.ideas = [self.run(self.pair.propose(author, f"Machine idea {i}")) for i in range(4)]
        self.voters = [self.pair.caller(KINDS[i % 4]) for i in range(5)]
        STATS["examples"] += 1

    @rule(voter=st.integers(0, 4), idea=st.integers(0, 3), weight=st.integers(1, 3))
    def cast(self, voter: int, idea: int, weight: int) -> None:
        who = self.voters[voter]
        response = self.run(
            self.pair.votes_http.put(f"/ideas/{self.ideas[idea]}/vote", json={"weight": weight}, headers=who.headers)
        )
        assert response.status_code in (200, 409), response.text  # 409: merged (as far as votes knows)
        STATS["calls"] += 1
        self.collect()

    @rule(voter=st.integers(0, 4), idea=st.integers(0, 3))
    def withdraw(self, voter: int, idea: int) -> None:
        who = self.voters[voter]
        response = self.run(self.pair.votes_http.delete(f"/ideas/{self.ideas[idea]}/vote", headers=who.headers))
        assert response.status_code == 200, response.text
        STATS["calls"] += 1
        self.collect()

    @rule(source=st.integers(0, 3), into=st.integers(0, 3))
    def merge(self, source: int, into: int) -> None:
        assert self.staff is not None
        response = self.run(
            self.pair.ideas_http.post(
                f"/ideas/{self.ideas[source]}/merge",
                json={"target_id": str(self.ideas[into])},
                headers=self.staff.headers,
            )
        )
        assert response.status_code in (200, 409), response.text  # 409: itself, merged, not open
        STATS["calls"] += 1
        self.collect()

    def _deliver(self, envelope: Envelope) -> None:
        try:
            first = self.run(self.pair.deliver(envelope))
        except Exception:
            STATS["transient refusals"] += 1
            return  # stays pending: a nak
        assert first, f"{envelope.type} was applied before"
        self.pending.remove(envelope)
        self.delivered.append(envelope)
        STATS["applied"] += 1
        self.collect()

    @precondition(lambda self: bool(self.pending))
    @rule(pick=st.integers(0, 10_000))
    def deliver_one(self, pick: int) -> None:
        self._deliver(self.pending[pick % len(self.pending)])

    @precondition(lambda self: bool(self.delivered))
    @rule(pick=st.integers(0, 10_000))
    def redeliver(self, pick: int) -> None:
        envelope = self.delivered[pick % len(self.delivered)]
        before = self.run(self.pair.snapshot(self.ideas))
        assert self.run(self.pair.deliver(envelope)) is False, "a redelivery must be a no-op"
        assert self.run(self.pair.snapshot(self.ideas)) == before, "a redelivery changed state"
        STATS["redeliveries"] += 1

    @precondition(lambda self: bool(self.pending))
    @rule(order=st.randoms(use_true_random=False))
    def drain(self, order: Any) -> None:
        self._drain(order.shuffle)
        assert not self.pending, [e.type for e in self.pending]
        snap = self.run(self.pair.snapshot(self.ideas))
        assert mismatches(snap, self.ideas, []) == []
        self._states_agree(snap)

    def _drain(self, shuffle: Callable[[list[Envelope]], None]) -> None:
        for _ in range(50):  # transient refusals (order) resolve as their predecessors apply
            if not self.pending:
                return
            batch = list(self.pending)
            shuffle(batch)
            for envelope in batch:
                self._deliver(envelope)

    def _states_agree(self, snap: dict[str, Any]) -> None:
        for idea_id in self.ideas:
            row = snap["projection"][idea_id]
            assert snap["states"][idea_id] == (row["status"], row["merged_into_id"]), "votes' idea state == ideas"

    @invariant()
    def projection_plus_pending_equals_source(self) -> None:
        if not self.ideas:
            return
        snap = self.run(self.pair.snapshot(self.ideas))
        assert mismatches(snap, self.ideas, self.pending) == []
        STATS["invariant checks"] += 1

    def teardown(self) -> None:
        if self.ideas:
            self._drain(lambda batch: batch.reverse())
            snap = self.run(self.pair.snapshot(self.ideas))
            assert not self.pending and mismatches(snap, self.ideas, []) == []
            self._states_agree(snap)


async def test_state_machine_projection_always_matches_source(pair: Pair) -> None:
    STATS.clear()
    machine = type("Machine", (VotingMachine,), {"pair": pair, "loop": asyncio.get_running_loop()})
    machine.TestCase.settings = settings(
        max_examples=20,
        stateful_step_count=30,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    failure: BaseException | None = None
    try:
        await asyncio.to_thread(run_state_machine_as_test, machine, settings=machine.TestCase.settings)
    except BaseException as exc:  # recorded below, then raised
        failure = exc
    RESULTS.record(
        "redelivery",
        "state-machine",
        {
            "case": "hypothesis RuleBasedStateMachine: cast / withdraw / merge / deliver / redeliver / drain",
            "inputs tried": f"{STATS['examples']} examples, {STATS['calls']} API calls",
            "events applied": STATS["applied"],
            "redeliveries (no-ops)": STATS["redeliveries"],
            "invariant checks": f"{STATS['invariant checks']} (+ {STATS['transient refusals']} transient refusals)",
            "result": "pass" if failure is None else "FAIL",
        },
    )
    if failure is not None:
        raise failure
