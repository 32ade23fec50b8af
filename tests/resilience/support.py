"""Shared tools of the resilience suite: a bounded GraphQL client that classifies every answer,
seeding through the public API, and the consistency checker (outboxes drained, consumers caught
up, every projection equal to its source) used after each fault."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import nats

from devstack.cluster import Cluster
from devstack.waiting import eventually
from shared.migrations import SERVICES

KINDS = ("CUSTOMER", "SUPPLIER", "PARTNER", "EMPLOYEE")
PASSWORD = "a long enough password"
ADMIN_EMAIL = "admin@resilience.test"
ADMIN_PASSWORD = "admin password for resilience"
# Every call is bounded: the gateway's own upstream deadline is 6 s, so 15 s means a hang.
CALL_TIMEOUT = 15.0
# Generous gateway limits for the clusters that are not about rate limiting.
NO_RATE_LIMITS = {
    "MUTATION_RATE_PER_SECOND": "100000",
    "MUTATION_BURST": "100000",
    "ANONYMOUS_MUTATION_RATE_PER_SECOND": "100000",
    "ANONYMOUS_MUTATION_BURST": "100000",
}
CLUSTER_ENV = {
    "ENVIRONMENT": "production",
    "BOOTSTRAP_ADMIN_EMAIL": ADMIN_EMAIL,
    "BOOTSTRAP_ADMIN_PASSWORD": ADMIN_PASSWORD,
    # Faster relays, so settling after a fault takes less time (the LISTEN wake-up does most).
    "RELAY_POLL_INTERVAL": "0.5",
}


# --- ids ---------------------------------------------------------------------------------------------
def gid(type_name: str, pk: uuid.UUID | str) -> str:
    return base64.b64encode(f"{type_name}:{uuid.UUID(str(pk))}".encode()).decode()


def pk_of(global_id: str) -> uuid.UUID:
    raw = base64.b64decode(global_id).decode()
    return uuid.UUID(raw.partition(":")[2])


# --- a GraphQL client that never waits forever -------------------------------------------------------
@dataclass
class Outcome:
    """One call as the client saw it."""

    status: int | None  # HTTP status; None: no answer (hang or transport error)
    data: Any = None
    codes: tuple[str, ...] = ()
    errors: list[dict[str, Any]] = field(default_factory=list)
    hang: bool = False
    transport_error: str | None = None
    text: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == 200 and not self.codes and self.data is not None

    @property
    def server_error(self) -> bool:
        """A 5xx that is not the retryable 503, or INTERNAL: always a failure."""
        return (self.status is not None and self.status >= 500 and self.status != 503) or "INTERNAL" in self.codes

    @property
    def retryable(self) -> bool:
        return self.hang or self.transport_error is not None or self.status == 503 or "UNAVAILABLE" in self.codes

    @property
    def label(self) -> str:
        """How the call is counted in the reports: ok, a contract code, or what went wrong."""
        if self.hang:
            return "HANG"
        if self.transport_error is not None:
            return f"TRANSPORT({self.transport_error})"
        if self.ok:
            return "ok"
        code = self.codes[0] if self.codes else "NO_CODE"
        return code if self.status == 200 else f"HTTP {self.status} {code}"


class Api:
    def __init__(self, url: str, timeout: float = CALL_TIMEOUT) -> None:
        self.url = url
        self.timeout = timeout
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=100),
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    async def raw(self, content: bytes, *, token: str | None = None, headers: dict[str, str] | None = None) -> Outcome:
        all_headers = {"content-type": "application/json", **(headers or {})}
        if token:
            all_headers["authorization"] = f"Bearer {token}"
        start = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout):
                response = await self.client.post(self.url, content=content, headers=all_headers)
        except TimeoutError:
            return Outcome(None, hang=True, elapsed=time.perf_counter() - start)
        except httpx.TimeoutException:
            return Outcome(None, hang=True, elapsed=time.perf_counter() - start)
        except httpx.HTTPError as exc:
            return Outcome(None, transport_error=type(exc).__name__, elapsed=time.perf_counter() - start)
        elapsed = time.perf_counter() - start
        outcome = Outcome(response.status_code, text=response.text, headers=dict(response.headers), elapsed=elapsed)
        try:
            body = response.json()
        except ValueError:
            return outcome
        if isinstance(body, dict):
            outcome.data = body.get("data")
            errors = body.get("errors") or []
            outcome.errors = [e for e in errors if isinstance(e, dict)]
            outcome.codes = tuple(str((e.get("extensions") or {}).get("code")) for e in outcome.errors)
        return outcome

    async def __call__(
        self, query: str, variables: dict[str, Any] | None = None, *, token: str | None = None
    ) -> Outcome:
        import orjson

        return await self.raw(orjson.dumps({"query": query, "variables": variables or {}}), token=token)

    async def ok(self, query: str, variables: dict[str, Any] | None = None, *, token: str | None = None) -> Any:
        outcome = await self(query, variables, token=token)
        assert outcome.ok, (outcome.status, outcome.errors, outcome.text[:500])
        return outcome.data


# --- seeding through the public API ------------------------------------------------------------------
REGISTER = """mutation($input: RegisterInput!) {
  register(input: $input) { token stakeholder { id kind role } } }"""
LOGIN = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token stakeholder { id kind role } } }"
PROPOSE = "mutation($input: ProposeIdeaInput!) { proposeIdea(input: $input) { id } }"
GRANT = "mutation($s: ID!, $r: Role!) { grantRole(stakeholderId: $s, role: $r) { id role } }"


@dataclass
class Person:
    email: str
    token: str
    id: str  # global id
    kind: str
    role: str = "MEMBER"

    @property
    def pk(self) -> uuid.UUID:
        return pk_of(self.id)


async def register(api: Api, kind: str, prefix: str = "res", **extra: Any) -> Person:
    email = f"{prefix}-{uuid.uuid4().hex[:12]}@example.org"
    data = await api.ok(
        REGISTER,
        {
            "input": {
                "email": email,
                "password": PASSWORD,
                "displayName": f"{prefix} {kind.lower()}",
                "kind": kind,
                **extra,
            }
        },
    )
    who = data["register"]
    return Person(email, who["token"], who["stakeholder"]["id"], who["stakeholder"]["kind"], who["stakeholder"]["role"])


async def register_many(api: Api, kinds: Iterable[str], prefix: str = "res", parallel: int = 4) -> list[Person]:
    """Registrations hash a password (argon2, CPU-bound): a few at a time, or they queue past
    the gateway's upstream deadline."""
    gate = asyncio.Semaphore(parallel)

    async def one(i: int, kind: str) -> Person:
        async with gate:
            return await register(api, kind, f"{prefix}{i}")

    return list(await asyncio.gather(*(one(i, kind) for i, kind in enumerate(kinds))))


async def login(api: Api, email: str, password: str = PASSWORD) -> Person:
    data = await api.ok(LOGIN, {"e": email, "p": password})
    who = data["login"]
    return Person(email, who["token"], who["stakeholder"]["id"], who["stakeholder"]["kind"], who["stakeholder"]["role"])


async def admin(api: Api) -> Person:
    return await login(api, ADMIN_EMAIL, ADMIN_PASSWORD)


async def with_role(api: Api, boss: Person, kind: str, role: str, prefix: str = "res") -> Person:
    """A new stakeholder of `kind` granted `role` by the ADMIN, logged in again so that the token
    carries the role."""
    person = await register(api, kind, prefix)
    if role != "MEMBER":
        await api.ok(GRANT, {"s": person.id, "r": role}, token=boss.token)
        person = await login(api, person.email)
    assert person.role == role
    return person


async def propose(api: Api, who: Person, title: str, visible_to: Iterable[str] = (), **extra: Any) -> str:
    data = await api.ok(
        PROPOSE,
        {"input": {"title": title, "body": f"Body of {title}", "visibleTo": list(visible_to), **extra}},
        token=who.token,
    )
    return str(data["proposeIdea"]["id"])


# --- databases -------------------------------------------------------------------------------------
async def query(cluster: Cluster, service: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(cluster.settings.database_url(service), timeout=10)
    try:
        return list(await conn.fetch(sql, *args, timeout=30))
    finally:
        await conn.close()


async def wait_known(cluster: Cluster, idea_ids: Iterable[uuid.UUID], timeout: float = 30.0) -> None:
    """Until the votes and comments services' projections know every idea (their proposals have
    travelled through the outbox and JetStream)."""
    wanted = list(idea_ids)

    async def known() -> bool:
        votes = await query(cluster, "votes", "SELECT count(*) AS n FROM idea_state WHERE idea_id = ANY($1)", wanted)
        comments = await query(
            cluster, "comments", "SELECT count(*) AS n FROM idea_visibility WHERE idea_id = ANY($1)", wanted
        )
        return bool(votes[0]["n"] == len(wanted) and comments[0]["n"] == len(wanted))

    await eventually(known, timeout=timeout, interval=0.1, what="the votes and comments projections know the ideas")


# --- consistency ------------------------------------------------------------------------------------
@dataclass
class Consistency:
    unsent: dict[str, int] = field(default_factory=dict)  # service -> unsent outbox rows
    consumers: dict[str, tuple[int, int]] = field(default_factory=dict)  # durable -> (pending, ack pending)
    mismatches: list[str] = field(default_factory=list)
    published: int = 0  # outbox rows sent, all services
    stream_messages: int = 0
    error: str | None = None

    @property
    def settled(self) -> bool:
        return (
            self.error is None
            and not any(self.unsent.values())
            and not any(p or a for p, a in self.consumers.values())
            and not self.mismatches
        )

    def summary(self) -> str:
        return (
            f"unsent={ {k: v for k, v in self.unsent.items() if v} } "
            f"consumers={ {k: v for k, v in self.consumers.items() if any(v)} } "
            f"mismatches={self.mismatches[:10]} error={self.error}"
        )


TALLY_COLUMNS = [f"{what}_{kind.lower()}" for kind in KINDS for what in ("voters", "weight")]


async def jetstream_state(nats_url: str) -> tuple[dict[str, tuple[int, int]], int]:
    nc = await nats.connect(nats_url, connect_timeout=3, max_reconnect_attempts=0, allow_reconnect=False)
    try:
        js = nc.jetstream()
        consumers: dict[str, tuple[int, int]] = {}
        messages = 0
        for stream in await js.streams_info():
            messages += stream.state.messages
            for info in await js.consumers_info(stream.config.name):
                consumers[f"{stream.config.name}/{info.name}"] = (info.num_pending, info.num_ack_pending)
        return consumers, messages
    finally:
        await nc.close()


async def check_consistency(cluster: Cluster) -> Consistency:
    """One look at the whole platform: outboxes, JetStream consumers, projections vs sources."""
    result = Consistency()
    try:
        for service in SERVICES:
            rows = await query(
                cluster,
                service,
                "SELECT count(*) FILTER (WHERE sent_at IS NULL) AS unsent, count(*) AS total FROM outbox",
            )
            result.unsent[service] = rows[0]["unsent"]
            result.published += rows[0]["total"] - rows[0]["unsent"]
        result.consumers, result.stream_messages = await jetstream_state(cluster.settings.nats_url)
        result.mismatches = await projection_mismatches(cluster)
    except Exception as exc:  # a part still restarting: not settled yet
        result.error = repr(exc)
    return result


async def projection_mismatches(cluster: Cluster) -> list[str]:
    out: list[str] = []
    ideas = {
        r["id"]: r
        for r in await query(
            cluster,
            "ideas",
            "SELECT id, status, visible_to, author_id, merged_into_id, voters, score, comment_count, recent_score, "
            + ", ".join(TALLY_COLUMNS)
            + " FROM idea",
        )
    }
    score_days = {
        r["idea_id"]: r["total"]
        for r in await query(cluster, "ideas", "SELECT idea_id, sum(delta) AS total FROM idea_score_day GROUP BY 1")
    }
    kind_sums = ", ".join(
        f"count(*) FILTER (WHERE voter_kind = '{k}') AS voters_{k.lower()}, "
        f"coalesce(sum(weight) FILTER (WHERE voter_kind = '{k}'), 0) AS weight_{k.lower()}"
        for k in KINDS
    )
    votes = {
        r["idea_id"]: r
        for r in await query(
            cluster,
            "votes",
            f"SELECT idea_id, count(*) AS voters, sum(weight) AS score, {kind_sums} FROM vote GROUP BY idea_id",
        )
    }
    bad_weights = await query(cluster, "votes", "SELECT count(*) AS n FROM vote WHERE weight NOT BETWEEN 1 AND 3")
    if bad_weights[0]["n"]:
        out.append(f"{bad_weights[0]['n']} votes with a weight outside 1..3")
    comments = {
        r["idea_id"]: r["n"]
        for r in await query(cluster, "comments", "SELECT idea_id, count(*) AS n FROM comment GROUP BY idea_id")
    }
    states = {
        r["idea_id"]: r
        for r in await query(
            cluster, "votes", "SELECT idea_id, status, visible_to, author_id, merged_into_id FROM idea_state"
        )
    }
    visibility = {
        r["idea_id"]: r
        for r in await query(cluster, "comments", "SELECT idea_id, status, visible_to, author_id FROM idea_visibility")
    }
    for unknown in (set(votes) | set(comments) | set(states) | set(visibility)) - set(ideas):
        out.append(f"{unknown}: known downstream, not in ideas")
    for idea_id, idea in ideas.items():
        v = votes.get(idea_id)
        expected = {
            "voters": v["voters"] if v else 0,
            "score": v["score"] if v else 0,
            **{c: (v[c] if v else 0) for c in TALLY_COLUMNS},
            "comment_count": comments.get(idea_id, 0),
        }
        actual = {k: idea[k] for k in expected}
        if actual != expected:
            diff = {k: (actual[k], expected[k]) for k in expected if actual[k] != expected[k]}
            out.append(f"{idea_id}: projection != source {diff}")
        if idea["recent_score"] != score_days.get(idea_id, 0):
            out.append(f"{idea_id}: recent_score {idea['recent_score']} != day buckets {score_days.get(idea_id, 0)}")
        state = states.get(idea_id)
        if state is None:
            out.append(f"{idea_id}: unknown to votes")
        elif (state["status"], sorted(state["visible_to"]), state["author_id"], state["merged_into_id"]) != (
            idea["status"],
            sorted(idea["visible_to"]),
            idea["author_id"],
            idea["merged_into_id"],
        ):
            out.append(f"{idea_id}: votes' idea_state {dict(state)} != ideas {idea['status']}")
        seen = visibility.get(idea_id)
        if seen is None:
            out.append(f"{idea_id}: unknown to comments")
        elif (seen["status"], sorted(seen["visible_to"]), seen["author_id"]) != (
            idea["status"],
            sorted(idea["visible_to"]),
            idea["author_id"],
        ):
            out.append(f"{idea_id}: comments' idea_visibility {dict(seen)} != ideas {idea['status']}")
    return out


async def settle(cluster: Cluster, timeout: float = 90.0) -> tuple[Consistency, float]:
    """Wait (bounded) until the platform is consistent; returns the last look, settled or not (the
    caller records it before asserting), and the time it took (a figure of the report)."""
    start = time.monotonic()
    looks: list[Consistency] = []

    async def settled() -> bool:
        looks.append(await check_consistency(cluster))
        return looks[-1].settled

    with contextlib.suppress(AssertionError):  # not settled in time: the last look says why
        await eventually(settled, timeout=timeout, interval=0.5, what="the platform consistent")
    return looks[-1], time.monotonic() - start


def count_labels(outcomes: Iterable[Outcome]) -> dict[str, int]:
    return dict(Counter(o.label for o in outcomes).most_common())
