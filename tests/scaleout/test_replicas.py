"""Two instances of every service on one machine (what `make run REPLICAS=2` starts): the
gateway spreads calls over them, their outbox relays and consumers cooperate, and killing one
instance of votes and one of ideas mid-run loses nothing and counts nothing twice."""

from __future__ import annotations

import asyncio
import random
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import pytest

from devstack.cluster import Cluster
from devstack.stack import GraphQL, new_data_dir
from devstack.waiting import eventually_blocking
from gateway.ids import parse_id  # the public API's global id format
from tests.resilience.support import settle

pytestmark = pytest.mark.slow

VOTERS = 40
OPS_PER_VOTER = 50  # 2,000 writes in all
IDEAS = 8

CAST = "mutation($i: ID!, $w: Int) { castVote(ideaId: $i, weight: $w) { weight } }"
WITHDRAW = "mutation($i: ID!) { withdrawVote(ideaId: $i) }"
COMMENT = "mutation($i: ID!, $b: String!) { addComment(ideaId: $i, body: $b) { id } }"


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    data_dir = new_data_dir("ccp-replicas-")
    c = Cluster(data_dir, replicas=2)
    c.start()
    try:
        yield c
    finally:
        c.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@dataclass
class Ledger:
    """What the API acknowledged, per voter in the order it was sent (each voter is sequential)."""

    # (idea global id, voter id) -> final weight (None: no vote) or "uncertain" after a failed call
    votes: dict[tuple[str, str], int | str | None] = field(default_factory=dict)
    comments: list[str] = field(default_factory=list)
    sent: int = 0
    acknowledged: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    server_errors: int = 0


def register(api: GraphQL, kind: str) -> tuple[str, str]:
    data = api.ok(
        "mutation($in: RegisterInput!) { register(input: $in) { token stakeholder { id } } }",
        **{
            "in": {
                "email": f"r-{uuid.uuid4().hex[:12]}@example.org",
                "password": "replicas password",
                "displayName": "Replica tester",
                "kind": kind,
            }
        },
    )
    return data["register"]["token"], data["register"]["stakeholder"]["id"]


async def call(
    client: httpx.AsyncClient, ledger: Ledger, token: str, query: str, **variables: object
) -> dict[str, Any] | None:
    ledger.sent += 1
    try:
        r = await client.post(
            str(client.base_url).rstrip("/"),
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {token}"},
        )
    except httpx.TimeoutException:
        ledger.errors["TIMEOUT"] = ledger.errors.get("TIMEOUT", 0) + 1
        return None
    if r.status_code >= 500:
        ledger.server_errors += 1
        return None
    try:
        body = r.json()
    except ValueError:
        key = f"HTTP {r.status_code} {r.text[:60]!r}"
        ledger.errors[key] = ledger.errors.get(key, 0) + 1
        return None
    if body.get("errors"):
        code = body["errors"][0].get("extensions", {}).get("code", "?")
        ledger.errors[code] = ledger.errors.get(code, 0) + 1
        return None
    ledger.acknowledged += 1
    return body["data"]  # type: ignore[no-any-return]


async def voter_session(
    url: str, token: str, voter: str, ideas: list[str], ledger: Ledger, progress: asyncio.Event, seed: int
) -> None:
    rng = random.Random(seed)
    async with httpx.AsyncClient(base_url=url, timeout=20) as client:
        for n in range(OPS_PER_VOTER):
            idea = rng.choice(ideas)
            roll = rng.random()
            if roll < 0.6:
                weight = rng.randint(1, 3)
                data = await call(client, ledger, token, CAST, i=idea, w=weight)
                ledger.votes[(idea, voter)] = weight if data else "uncertain"
            elif roll < 0.8:
                data = await call(client, ledger, token, WITHDRAW, i=idea)
                ledger.votes[(idea, voter)] = None if data else "uncertain"
            else:
                data = await call(client, ledger, token, COMMENT, i=idea, b=f"comment {seed}-{n}")
                if data:
                    ledger.comments.append(data["addComment"]["id"])
            if ledger.sent >= VOTERS * OPS_PER_VOTER // 3:
                progress.set()


def metric_sum(url: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in httpx.get(f"{url}/metrics", timeout=5).text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def test_two_replicas_share_the_work_and_survive_losing_one(cluster: Cluster) -> None:
    api = GraphQL(cluster.graphql_url)
    author_token, _ = register(api, "EMPLOYEE")
    author = GraphQL(cluster.graphql_url, author_token)
    ideas = [
        author.ok(
            "mutation($in: ProposeIdeaInput!) { proposeIdea(input: $in) { id } }",
            **{"in": {"title": f"Replica idea {i}", "body": "b"}},
        )["proposeIdea"]["id"]
        for i in range(IDEAS)
    ]
    voters = [register(api, random.choice(["CUSTOMER", "SUPPLIER", "PARTNER", "EMPLOYEE"])) for _ in range(VOTERS)]
    # Both votes instances learn the ideas from events before the load starts.
    probe = GraphQL(cluster.graphql_url, voters[0][0])
    for idea in ideas:
        eventually_blocking(  # a mutation at most 10 times a second: the gateway's budget refills at that rate
            lambda idea=idea: "castVote" in (probe(CAST, i=idea, w=1).get("data") or {}),
            interval=0.1,
            what="the votes service knows the idea",
        )
        probe.ok(WITHDRAW, i=idea)

    ledger = Ledger()
    progress = asyncio.Event()
    sessions = [
        asyncio.create_task(voter_session(cluster.graphql_url, t, v, ideas, ledger, progress, seed))
        for seed, (t, v) in enumerate(voters)
    ]
    await asyncio.wait_for(progress.wait(), timeout=300)
    served = {
        name: metric_sum(cluster.url(name), "http_requests_total", route="/ideas/{idea_id}/vote")
        for name in ("votes.1", "votes.2")
    }
    consumed = {
        name: metric_sum(cluster.url(name), "events_consumed_total", durable="ideas-votes")
        for name in ("ideas.1", "ideas.2")
    }
    cluster.kill("votes.1")
    cluster.kill("ideas.2")
    await asyncio.wait_for(asyncio.gather(*sessions), timeout=600)

    assert all(n > 0 for n in served.values()), f"both votes instances serve requests: {served}"
    assert all(n > 0 for n in consumed.values()), f"both ideas instances consume events: {consumed}"
    assert ledger.server_errors == 0
    assert set(ledger.errors) <= {"UNAVAILABLE", "TIMEOUT"}, ledger.errors
    assert ledger.acknowledged >= ledger.sent * 0.9

    database_url = cluster.settings.database_url
    state, _ = await settle(cluster, timeout=120)
    assert state.settled, state.summary()  # outboxes drained, consumers caught up, projections == sources

    votes = await asyncpg.connect(database_url("votes"))
    comments = await asyncpg.connect(database_url("comments"))
    try:
        stored = {
            (str(r["idea_id"]), str(r["voter_id"])): r["weight"]
            for r in await votes.fetch("SELECT idea_id, voter_id, weight FROM vote")
        }
        comment_ids = [str(r["id"]) for r in await comments.fetch("SELECT id FROM comment")]
    finally:
        await votes.close()
        await comments.close()
    for (idea, voter), expected in ledger.votes.items():
        if expected == "uncertain":
            continue
        key = (str(parse_id(idea, "Idea")), str(parse_id(voter, "Stakeholder")))
        assert stored.get(key) == expected, f"acknowledged vote {key}: stored {stored.get(key)}, expected {expected}"
    acknowledged_comments = [str(parse_id(c, "Comment")) for c in ledger.comments]
    assert len(set(acknowledged_comments)) == len(acknowledged_comments)
    assert all(comment_ids.count(c) == 1 for c in acknowledged_comments)
