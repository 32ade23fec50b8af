"""Out of order, the same end state: every projection of every stream is fed the same events in
publication order and in shuffled orders, and must end in the same state (the catalogue's
ordering policy, shared/events/catalogue.py: VERSIONED streams keep the newest event per
aggregate, COMMUTATIVE streams add deltas that commute).

The events are real: a scenario runs through the producing services' HTTP APIs (ideas, votes,
comments, in-process, their messaging stopped so the test moves events itself) and is read back
from their outboxes. Each consuming service then projects them into a database of its own
through `ConsumerRunner.apply` (inbox, ordering policy and handler in one transaction, as a
JetStream delivery runs it); an event its handler cannot apply yet (`RetryLater`) goes back to
the end of the queue, as a nak would."""

from __future__ import annotations

import importlib
import random
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncEngine

from devstack.testing import Infra, migrated_database, stop_messaging
from services.ideas import domain as ideas_domain
from services.ideas.models import Idea
from shared.auth import TokenIssuer
from shared.consumer import ConsumerRunner, Handler, Subscription
from shared.db import create_engine, create_sessionmaker
from shared.events.catalogue import Ordering, spec_of
from shared.events.envelope import Envelope
from shared.events.failures import RetryLater
from shared.settings import ServiceSettings

CONSUMING = ("votes", "comments", "stakeholders", "ideas")
SUBSCRIPTIONS: dict[str, list[Subscription]] = {
    service: importlib.import_module(f"services.{service}.consumers").SUBSCRIPTIONS for service in CONSUMING
}
TALLY = ", ".join(c for k in ideas_domain.KINDS for c in (ideas_domain.voters_column(k), ideas_domain.weight_column(k)))
# What each consuming service keeps of other services' events: its projections, read back.
SNAPSHOTS: dict[str, list[str]] = {
    "votes": ["SELECT idea_id, status, visible_to, author_id, merged_into_id FROM idea_state ORDER BY idea_id"],
    "comments": ["SELECT idea_id, visible_to, author_id, status FROM idea_visibility ORDER BY idea_id"],
    "stakeholders": [
        "SELECT idea_id, tags FROM idea_tags ORDER BY idea_id",
        "SELECT stakeholder_id, idea_id, activity FROM idea_activity ORDER BY stakeholder_id, idea_id",
    ],
    "ideas": [
        f"SELECT id, voters, score, recent_score, comment_count, {TALLY} FROM idea ORDER BY id",
        "SELECT idea_id, day, delta FROM idea_score_day ORDER BY idea_id, day",
    ],
}
# Emptied before each projection run (the ideas service's own idea rows are copied in afresh).
PROJECTION_TABLES = {
    "votes": "idea_state, vote",
    "comments": "comment_flag, comment, idea_visibility",
    "stakeholders": "idea_tags, idea_activity",
    "ideas": "idea_score_day, idea_revision, idea",
}


def routes(service: str) -> dict[str, tuple[str, Handler]]:
    return {subject: (sub.durable, fn) for sub in SUBSCRIPTIONS[service] for subject, fn in sub.subjects.items()}


class Producers:
    """The ideas, votes and comments services with their relays and consumers stopped; `sync`
    hands each one the events of the others it consumes, in publication order."""

    def __init__(self, apps: dict[str, Any], clients: dict[str, Any], tokens: TokenIssuer) -> None:
        self.apps, self.http, self.tokens = apps, clients, tokens
        self.delivered: set[uuid.UUID] = set()

    def headers(self, kind: str = "CUSTOMER", role: str = "MEMBER", who: uuid.UUID | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens.issue(who or uuid.uuid4(), kind, role)}"}  # type: ignore[arg-type]

    async def call(self, service: str, method: str, path: str, headers: dict[str, str], **body: Any) -> Any:
        r = await self.http[service].request(method, path, json=body or None, headers=headers)
        assert r.status_code < 300, (path, r.text)
        return r.json()

    async def events(self) -> list[Envelope]:
        """Every event the producers have published, in each one's publication order."""
        found: list[Envelope] = []
        for app in self.apps.values():
            async with app.state.runtime.engine.connect() as conn:
                rows = await conn.execute(text("SELECT payload FROM outbox ORDER BY created_at, id"))
                found += [Envelope.model_validate_json(r.payload) for r in rows]
        return found

    async def sync(self) -> None:
        for envelope in await self.events():
            if envelope.id in self.delivered:
                continue
            self.delivered.add(envelope.id)
            for service, app in self.apps.items():
                route = routes(service).get(envelope.type)
                if route is not None:
                    payload = spec_of(envelope.type).model.model_validate(envelope.data)
                    await app.state.runtime.consumers.apply(route[0], envelope, payload, route[1])


async def run_scenario(producers: Producers) -> list[Envelope]:
    p = producers
    author, staff = p.headers(), p.headers("EMPLOYEE", "PRODUCT_TEAM")
    supplier, customer, partner = p.headers("SUPPLIER"), p.headers("CUSTOMER"), p.headers("PARTNER")

    async def propose(tags: list[str], visible_to: list[str] | None = None) -> str:
        body = {"title": f"Order {tags[0]}", "body": "b", "tags": tags, "visible_to": visible_to or []}
        return str((await p.call("ideas", "POST", "/ideas", author, **body))["id"])

    async def vote(idea: str, who: dict[str, str], weight: int | None) -> None:
        if weight is None:
            await p.call("votes", "DELETE", f"/ideas/{idea}/vote", who)
        else:
            await p.call("votes", "PUT", f"/ideas/{idea}/vote", who, weight=weight)

    a = await propose(["order-a", "shared"], ["SUPPLIER"])
    b, c = await propose(["order-b", "shared"]), await propose(["order-c"])
    await p.sync()
    for idea, who, weight in [
        (a, supplier, 3),
        (b, customer, 1),
        (b, customer, 2),
        (c, partner, 2),
        (c, partner, None),
        (c, partner, 1),
        (c, customer, 3),
        (b, partner, 1),
    ]:
        await vote(idea, who, weight)
    for idea, who in [(b, customer), (c, partner), (c, staff), (a, supplier)]:
        await p.call("comments", "POST", f"/ideas/{idea}/comments", who, body="a comment")
    await p.call("ideas", "PATCH", f"/ideas/{a}", author, tags=["order-a2", "shared"])
    await p.call("ideas", "PATCH", f"/ideas/{a}", staff, title="Refined again", tags=["order-a3"])
    for idea, statuses in [(a, ["UNDER_REVIEW", "PLANNED", "IN_PROGRESS"]), (b, ["UNDER_REVIEW", "DECLINED", "OPEN"])]:
        for status in statuses:
            await p.call("ideas", "POST", f"/ideas/{idea}/status", staff, status=status)
    await p.call("ideas", "POST", f"/ideas/{c}/merge", staff, target_id=b)
    await p.sync()  # the votes service moves the merged idea's votes: votes.moved
    await p.sync()
    return await p.events()


async def project(
    engine: AsyncEngine, service: str, events: list[Envelope], seed: int | None, prepare: Callable[[], Awaitable[None]]
) -> list[list[tuple[Any, ...]]]:
    """`service`'s projections after applying its share of `events` (shuffled with `seed`)."""
    async with engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE inbox, projection_version, outbox, {PROJECTION_TABLES[service]}"))
    await prepare()
    runner = ConsumerRunner(None, create_sessionmaker(engine), SUBSCRIPTIONS[service])  # type: ignore[arg-type]
    table = routes(service)
    pending = [e for e in events if e.type in table]
    if seed is not None:
        random.Random(seed).shuffle(pending)
    attempts = 0
    while pending:
        envelope = pending.pop(0)
        attempts += 1
        assert attempts < 50 * len(events), "events that never apply"
        durable, handler = table[envelope.type]
        try:
            await runner.apply(durable, envelope, spec_of(envelope.type).model.model_validate(envelope.data), handler)
        except RetryLater:
            pending.append(envelope)  # a nak: it comes back later
    async with engine.connect() as conn:
        return [[tuple(row) for row in await conn.execute(text(query))] for query in SNAPSHOTS[service]]


def overtaken(events: list[Envelope], seed: int) -> int:
    """How many events of VERSIONED streams the shuffle puts after a newer one of their aggregate."""
    order = list(events)
    random.Random(seed).shuffle(order)
    newest: dict[str, int] = {}
    late = 0
    for e in order:
        if e.aggregate_version is None or spec_of(e.type).ordering is not Ordering.VERSIONED:
            continue
        late += newest.get(e.subject_id, 0) > e.aggregate_version
        newest[e.subject_id] = max(newest.get(e.subject_id, 0), e.aggregate_version)
    return late


async def test_every_projection_ends_in_the_same_state_whatever_the_delivery_order(
    infra: Infra, service_app: Any, tokens: TokenIssuer
) -> None:
    apps, clients = {}, {}
    for service in ("ideas", "votes", "comments"):
        apps[service], clients[service] = await service_app(service, database=f"order_src_{service}")
        await stop_messaging(apps[service])
    events = await run_scenario(Producers(apps, clients, tokens))
    assert {spec_of(e.type).stream for e in events} == {"IDEAS", "VOTES", "COMMENTS"}
    assert any(e.type.endswith("votes.moved") for e in events)

    async with apps["ideas"].state.runtime.engine.connect() as conn:
        source_ideas = [dict(r._mapping) for r in await conn.execute(text("SELECT * FROM idea"))]
    covered: set[str] = set()
    seeds = (1, 2, 3)
    assert all(overtaken(events, seed) > 0 for seed in seeds), "each shuffle must deliver some events late"
    for service in CONSUMING:
        url = await migrated_database(infra, service, f"order_{service}")
        engine = create_engine(ServiceSettings(service_name=f"order-{service}", database_url=url))

        async def prepare(service: str = service, engine: AsyncEngine = engine) -> None:
            if service != "ideas":
                return
            # The ideas service projects votes and comments onto its own idea rows: the same ideas,
            # their numbers at zero, before any of those events.
            zero = {c: 0 for c in ("voters", "score", "recent_score", "comment_count", *TALLY.split(", "))}
            rows = [{**row, **zero, "merged_into_id": None, "status": "OPEN"} for row in source_ideas]
            async with engine.begin() as conn:
                await conn.execute(insert(Idea.__table__), rows)  # type: ignore[attr-defined]

        try:
            in_order = await project(engine, service, events, None, prepare)
            assert any(in_order), f"{service} projected nothing"
            for seed in seeds:
                assert await project(engine, service, events, seed, prepare) == in_order, (service, seed)
        finally:
            await engine.dispose()
        covered |= {sub.durable for sub in SUBSCRIPTIONS[service]}
    every_projection = {
        sub.durable
        for module in ("stakeholders", "ideas", "votes", "comments")
        for sub in importlib.import_module(f"services.{module}.consumers").SUBSCRIPTIONS
    }
    assert covered == every_projection
