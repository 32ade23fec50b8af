"""Comment service on a real PostgreSQL and nats-server.

The ideas this service knows come from ideas.v1.idea.* events: tests feed them through the
consumer runner (`apply`, deterministic) and once over real NATS."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from nats.js.api import ConsumerConfig, DeliverPolicy
from sqlalchemy import event, text

from devstack.testing import started_consumers
from devstack.waiting import eventually
from services.comments.consumers import on_idea_merged, on_idea_proposed, on_idea_status_changed
from shared.auth import Scope, TokenIssuer
from shared.consumer import ConsumerRunner
from shared.events.catalogue import (
    CommentAdded,
    CommentHidden,
    IdeaMerged,
    IdeaProposed,
    IdeaStatus,
    IdeaStatusChanged,
    Role,
    StakeholderKind,
    subject_of,
)
from shared.events.envelope import Envelope
from shared.pagination import encode_cursor

CONSUMER = "comments-ideas"
ADDED = subject_of(CommentAdded)
HIDDEN = subject_of(CommentHidden)


@dataclass
class Person:
    id: uuid.UUID
    headers: dict[str, str]


@dataclass
class Ctx:
    app: FastAPI
    client: httpx.AsyncClient
    tokens: TokenIssuer
    versions: dict[uuid.UUID, int] = field(default_factory=dict)

    def caller(
        self, kind: str = "CUSTOMER", role: str = "MEMBER", id: uuid.UUID | None = None, scope: str = "read-write"
    ) -> Person:
        who = id or uuid.uuid4()
        token = self.tokens.issue(who, StakeholderKind(kind), Role(role), scope=Scope(scope))
        return Person(who, {"Authorization": f"Bearer {token}"})

    async def consumers(self) -> ConsumerRunner:
        return await started_consumers(self.app)

    def next_version(self, idea_id: uuid.UUID, version: int | None) -> int:
        """The idea's version after this event (the IDEAS stream is VERSIONED): the next one, or
        the one given (a late event)."""
        self.versions[idea_id] = max(self.versions.get(idea_id, 0), version or self.versions.get(idea_id, 0) + 1)
        return version or self.versions[idea_id]

    async def propose(self, visible_to: tuple[str, ...] = (), author_id: uuid.UUID | None = None) -> uuid.UUID:
        payload = proposed(visible_to, author_id)
        envelope = Envelope.of(payload, self.next_version(payload.idea_id, 1))
        assert await (await self.consumers()).apply(CONSUMER, envelope, payload, on_idea_proposed)
        return payload.idea_id

    async def merge(self, idea_id: uuid.UUID, version: int | None = None) -> None:
        payload = IdeaMerged(idea_id=idea_id, target_id=uuid.uuid4(), merged_by=uuid.uuid4())
        envelope = Envelope.of(payload, self.next_version(idea_id, version))
        assert await (await self.consumers()).apply(CONSUMER, envelope, payload, on_idea_merged)

    async def set_status(
        self, idea_id: uuid.UUID, old: IdeaStatus, new: IdeaStatus, version: int | None = None
    ) -> None:
        payload = IdeaStatusChanged(idea_id=idea_id, from_status=old, to_status=new, note=None, changed_by=uuid.uuid4())
        envelope = Envelope.of(payload, self.next_version(idea_id, version))
        assert await (await self.consumers()).apply(CONSUMER, envelope, payload, on_idea_status_changed)

    async def add(self, idea_id: uuid.UUID, who: Person, body: str = "a comment", **extra: Any) -> httpx.Response:
        return await self.client.post(f"/ideas/{idea_id}/comments", json={"body": body, **extra}, headers=who.headers)

    async def added(self, idea_id: uuid.UUID, who: Person, body: str = "a comment", **extra: Any) -> dict[str, Any]:
        r = await self.add(idea_id, who, body, **extra)
        assert r.status_code == 201, r.text
        return r.json()  # type: ignore[no-any-return]

    async def outbox(self, subject: str, comment_id: str) -> list[dict[str, Any]]:
        """The outbox events of `subject` about one comment (the payload column holds the envelope)."""
        async with self.app.state.runtime.engine.connect() as conn:
            rows = (
                await conn.execute(
                    text(
                        "SELECT payload FROM outbox WHERE subject = :s "
                        "AND convert_from(payload, 'UTF8')::jsonb #>> '{data,comment_id}' = :c"
                    ),
                    {"s": subject, "c": comment_id},
                )
            ).all()
        return [orjson.loads(r.payload) for r in rows]


def proposed(visible_to: tuple[str, ...] = (), author_id: uuid.UUID | None = None) -> IdeaProposed:
    return IdeaProposed(
        idea_id=uuid.uuid4(),
        author_id=author_id or uuid.uuid4(),
        title="An idea",
        tags=["test"],
        visible_to=[StakeholderKind(k) for k in visible_to],
        status=IdeaStatus.OPEN,
        created_at=datetime.now(UTC),
    )


@pytest.fixture
async def ctx(service_app, tokens: TokenIssuer) -> Ctx:  # type: ignore[no-untyped-def]
    app, client = await service_app("comments")
    return Ctx(app, client, tokens)


def assert_problem(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == code


# --- adding ---------------------------------------------------------------------------------------------
async def test_add_comment_publishes_exactly_one_event(ctx: Ctx) -> None:
    idea = await ctx.propose()
    member = ctx.caller()
    comment = await ctx.added(idea, member, "First!")
    assert comment["idea_id"] == str(idea) and comment["author_id"] == str(member.id)
    assert comment["body"] == "First!" and comment["parent_id"] is None
    assert comment["official"] is False and comment["hidden"] is False
    assert comment["hidden_reason"] is None and comment["flag_count"] is None

    events = await ctx.outbox(ADDED, comment["id"])
    assert len(events) == 1
    data = events[0]["data"]
    assert data["idea_id"] == str(idea) and data["author_id"] == str(member.id) and data["official"] is False
    assert datetime.fromisoformat(data["created_at"]) == datetime.fromisoformat(comment["created_at"])

    fetched = await ctx.client.get(f"/comments/{comment['id']}", headers=member.headers)
    assert fetched.status_code == 200 and fetched.json() == comment


@pytest.mark.parametrize(
    "body",
    ["", "   ", "\n\t  \r\n", "x" * 10_001, "nul \x00 inside"],
    ids=["empty", "spaces", "whitespace", "too-long", "nul"],
)
async def test_bad_bodies_are_refused(ctx: Ctx, body: str) -> None:
    idea = await ctx.propose()
    r = await ctx.add(idea, ctx.caller(), body)
    assert_problem(r, 400, "BAD_USER_INPUT")
    listed = (await ctx.client.get(f"/ideas/{idea}/comments")).json()
    assert listed["total_count"] == 0


async def test_malformed_requests_are_4xx_never_500(ctx: Ctx) -> None:
    idea = await ctx.propose()
    member = ctx.caller()
    url = f"/ideas/{idea}/comments"
    # An unpaired surrogate cannot be stored as text: refused, not a 500.
    r = await ctx.client.post(
        url, content=b'{"body": "x \\ud800 y"}', headers={**member.headers, "content-type": "application/json"}
    )
    assert_problem(r, 400, "BAD_USER_INPUT")
    r = await ctx.client.post(url, content=b"{not json", headers={**member.headers, "content-type": "application/json"})
    assert_problem(r, 422, "BAD_USER_INPUT")
    assert_problem(await ctx.client.post(url, json={}, headers=member.headers), 422, "BAD_USER_INPUT")
    assert_problem(await ctx.client.post(url, json={"body": 12}, headers=member.headers), 422, "BAD_USER_INPUT")
    assert_problem(
        await ctx.client.post(url, json={"body": "x", "parent_id": "nope"}, headers=member.headers),
        422,
        "BAD_USER_INPUT",
    )
    assert_problem(
        await ctx.client.post("/ideas/not-a-uuid/comments", json={"body": "x"}, headers=member.headers),
        422,
        "BAD_USER_INPUT",
    )
    assert_problem(await ctx.client.get("/comments/not-a-uuid"), 422, "BAD_USER_INPUT")
    assert_problem(
        await ctx.client.post(url, json={"body": "x"}, headers={"Authorization": "Bearer a.b.c"}),
        401,
        "UNAUTHENTICATED",
    )
    # A read-only integrator key cannot write.
    assert_problem(await ctx.add(idea, ctx.caller(scope="read")), 403, "FORBIDDEN")
    assert (await ctx.client.get(url)).json()["total_count"] == 0


async def test_longest_body_and_surrounding_whitespace_are_kept(ctx: Ctx) -> None:
    idea = await ctx.propose()
    member = ctx.caller()
    longest = await ctx.added(idea, member, "y" * 10_000)
    assert len(longest["body"]) == 10_000
    padded = await ctx.added(idea, member, "  \n indented reply\n\n")
    assert padded["body"] == "  \n indented reply\n\n"


async def test_markup_scripts_and_sql_are_stored_and_returned_unchanged(ctx: Ctx) -> None:
    idea = await ctx.propose()
    member = ctx.caller()
    body = (
        "<script>alert('x')</script><img src=x onerror=alert(1)> &amp; "
        "'; DROP TABLE comment; -- \" OR 1=1 {{7*7}} ${jndi:ldap://x} %s %(x)s \\ \u202e\u200b 😀"
    )
    comment = await ctx.added(idea, member, body)
    assert comment["body"] == body
    assert (await ctx.client.get(f"/comments/{comment['id']}")).json()["body"] == body
    assert (await ctx.client.get(f"/ideas/{idea}/comments")).json()["items"][0]["body"] == body


# --- threads ------------------------------------------------------------------------------------------------
async def test_threading(ctx: Ctx) -> None:
    idea, other, restricted = await ctx.propose(), await ctx.propose(), await ctx.propose(("SUPPLIER",))
    member = ctx.caller()
    root = await ctx.added(idea, member, "root")
    reply = await ctx.added(idea, ctx.caller(), "reply", parent_id=root["id"])
    assert reply["parent_id"] == root["id"]
    nested = await ctx.added(idea, member, "reply to reply", parent_id=reply["id"])
    assert nested["parent_id"] == reply["id"]
    assert (await ctx.outbox(ADDED, reply["id"]))[0]["data"]["parent_id"] == root["id"]

    elsewhere = await ctx.added(other, member, "on another idea")
    assert_problem(await ctx.add(idea, member, "x", parent_id=elsewhere["id"]), 400, "BAD_USER_INPUT")
    assert_problem(await ctx.add(idea, member, "x", parent_id=str(uuid.uuid4())), 404, "NOT_FOUND")
    # A parent on an idea the caller cannot see reads as unknown.
    hidden_parent = await ctx.added(restricted, ctx.caller("SUPPLIER"), "supplier talk")
    assert_problem(await ctx.add(idea, member, "x", parent_id=hidden_parent["id"]), 404, "NOT_FOUND")
    assert (await ctx.client.get(f"/ideas/{idea}/comments")).json()["total_count"] == 3


@pytest.mark.parametrize(
    ("role", "official"), [("MEMBER", False), ("MODERATOR", False), ("PRODUCT_TEAM", True), ("ADMIN", True)]
)
async def test_official_comes_from_the_role(ctx: Ctx, role: str, official: bool) -> None:
    idea = await ctx.propose()
    comment = await ctx.added(idea, ctx.caller("EMPLOYEE", role))
    assert comment["official"] is official
    assert (await ctx.outbox(ADDED, comment["id"]))[0]["data"]["official"] is official


# --- visibility ----------------------------------------------------------------------------------------------
async def test_supplier_only_idea_visibility_matrix(ctx: Ctx) -> None:
    author = ctx.caller("CUSTOMER")  # the author sees their idea whatever their kind
    idea = await ctx.propose(("SUPPLIER",), author_id=author.id)
    seed = await ctx.added(idea, ctx.caller("SUPPLIER"), "seen by few")
    cid = seed["id"]

    allowed = {
        "supplier": ctx.caller("SUPPLIER"),
        "author": author,
        "product team": ctx.caller("CUSTOMER", "PRODUCT_TEAM"),
        "admin": ctx.caller("PARTNER", "ADMIN"),
    }
    for name, who in allowed.items():
        listed = await ctx.client.get(f"/ideas/{idea}/comments", headers=who.headers)
        assert listed.status_code == 200 and listed.json()["items"][0]["id"] == cid, name
        assert (await ctx.client.get(f"/comments/{cid}", headers=who.headers)).status_code == 200, name
        batch = await ctx.client.post("/comments/batch", json={"ids": [cid]}, headers=who.headers)
        assert [c["id"] for c in batch.json()["items"]] == [cid], name
        pages = await ctx.client.post("/comments/by-ideas", json={"idea_ids": [str(idea)]}, headers=who.headers)
        assert list(pages.json()["pages"]) == [str(idea)], name
        assert (await ctx.add(idea, who, f"{name} was here")).status_code == 201, name

    refused = {
        "customer": ctx.caller("CUSTOMER"),
        "customer moderator": ctx.caller("CUSTOMER", "MODERATOR"),
        "partner": ctx.caller("PARTNER"),
        "anonymous": Person(uuid.uuid4(), {}),
    }
    for name, who in refused.items():
        assert_problem(await ctx.client.get(f"/ideas/{idea}/comments", headers=who.headers), 404, "NOT_FOUND")
        assert_problem(await ctx.client.get(f"/comments/{cid}", headers=who.headers), 404, "NOT_FOUND")
        batch = await ctx.client.post("/comments/batch", json={"ids": [cid]}, headers=who.headers)
        assert batch.status_code == 200 and batch.json()["items"] == [], name
        pages = await ctx.client.post("/comments/by-ideas", json={"idea_ids": [str(idea)]}, headers=who.headers)
        assert pages.status_code == 200 and pages.json()["pages"] == {}, name
        if who.headers:
            assert_problem(await ctx.add(idea, who), 404, "NOT_FOUND")
            assert_problem(
                await ctx.client.post(f"/comments/{cid}/flags", json={"reason": "r"}, headers=who.headers),
                404,
                "NOT_FOUND",
            )
            assert_problem(
                await ctx.client.post(f"/comments/{cid}/hide", json={"reason": "r"}, headers=who.headers),
                404,
                "NOT_FOUND",
            )
        else:  # every write needs a token
            assert_problem(await ctx.add(idea, who), 401, "UNAUTHENTICATED")
    total = (await ctx.client.get(f"/ideas/{idea}/comments", headers=author.headers)).json()["total_count"]
    assert total == 1 + len(allowed)


async def test_public_idea_is_readable_anonymously_and_unknown_ideas_are_not_found(ctx: Ctx) -> None:
    idea = await ctx.propose()
    comment = await ctx.added(idea, ctx.caller("PARTNER"))
    assert (await ctx.client.get(f"/ideas/{idea}/comments")).json()["items"][0]["id"] == comment["id"]
    assert (await ctx.client.get(f"/comments/{comment['id']}")).status_code == 200
    assert_problem(await ctx.add(idea, Person(uuid.uuid4(), {})), 401, "UNAUTHENTICATED")

    unknown = uuid.uuid4()
    assert_problem(await ctx.client.get(f"/ideas/{unknown}/comments"), 404, "NOT_FOUND")
    assert_problem(await ctx.add(unknown, ctx.caller("EMPLOYEE", "ADMIN")), 404, "NOT_FOUND")
    assert_problem(await ctx.client.get(f"/comments/{uuid.uuid4()}"), 404, "NOT_FOUND")


# --- idea status -----------------------------------------------------------------------------------------------
async def test_merged_idea_refuses_comments_but_keeps_its_thread(ctx: Ctx) -> None:
    idea = await ctx.propose()
    member = ctx.caller()
    before = await ctx.added(idea, member, "before the merge")
    await ctx.merge(idea, version=3)
    assert_problem(await ctx.add(idea, member, "after the merge"), 409, "CONFLICT")
    assert_problem(await ctx.add(idea, member, "reply", parent_id=before["id"]), 409, "CONFLICT")
    # A late status change (older than the merge) cannot reopen a merged idea.
    await ctx.set_status(idea, IdeaStatus.DECLINED, IdeaStatus.OPEN, version=2)
    assert_problem(await ctx.add(idea, member, "still merged"), 409, "CONFLICT")
    listed = (await ctx.client.get(f"/ideas/{idea}/comments")).json()
    assert [c["id"] for c in listed["items"]] == [before["id"]]


async def test_shipped_and_declined_ideas_still_accept_comments(ctx: Ctx) -> None:
    shipped, declined = await ctx.propose(), await ctx.propose()
    await ctx.set_status(shipped, IdeaStatus.IN_PROGRESS, IdeaStatus.SHIPPED)
    await ctx.set_status(declined, IdeaStatus.OPEN, IdeaStatus.DECLINED)
    await ctx.added(shipped, ctx.caller(), "thanks for shipping")
    await ctx.added(declined, ctx.caller(), "please reconsider")


async def test_status_change_as_merge_is_honoured(ctx: Ctx) -> None:
    idea = await ctx.propose()
    await ctx.set_status(idea, IdeaStatus.OPEN, IdeaStatus.MERGED)
    assert_problem(await ctx.add(idea, ctx.caller()), 409, "CONFLICT")


# --- hiding -------------------------------------------------------------------------------------------------------
async def test_hide_permissions_and_blanked_body(ctx: Ctx) -> None:
    idea = await ctx.propose()
    author = ctx.caller()
    comment = await ctx.added(idea, author, "rude words")
    cid = comment["id"]
    url = f"/comments/{cid}/hide"

    assert_problem(await ctx.client.post(url, json={"reason": "rude"}, headers=author.headers), 403, "FORBIDDEN")
    assert_problem(await ctx.client.post(url, json={"reason": "rude"}), 401, "UNAUTHENTICATED")
    moderator = ctx.caller("CUSTOMER", "MODERATOR")
    assert_problem(await ctx.client.post(url, json={"reason": "   "}, headers=moderator.headers), 400, "BAD_USER_INPUT")
    assert_problem(
        await ctx.client.post(url, json={"reason": "r" * 501}, headers=moderator.headers), 400, "BAD_USER_INPUT"
    )
    assert_problem(
        await ctx.client.post(f"/comments/{uuid.uuid4()}/hide", json={"reason": "x"}, headers=moderator.headers),
        404,
        "NOT_FOUND",
    )
    assert await ctx.outbox(HIDDEN, cid) == []

    hidden = await ctx.client.post(url, json={"reason": " rude "}, headers=moderator.headers)
    assert hidden.status_code == 200, hidden.text
    assert hidden.json()["hidden"] is True and hidden.json()["body"] == "rude words"
    assert hidden.json()["hidden_reason"] == "rude"
    events = await ctx.outbox(HIDDEN, cid)
    assert len(events) == 1
    assert events[0]["data"]["reason"] == "rude" and events[0]["data"]["hidden_by"] == str(moderator.id)

    # Non-moderators (author and anonymous too) read an empty body; the comment keeps its place.
    later = await ctx.added(idea, ctx.caller(), "a later comment")
    for who in (author.headers, {}, ctx.caller("SUPPLIER").headers):
        one = (await ctx.client.get(f"/comments/{cid}", headers=who)).json()
        assert one["hidden"] is True and one["body"] == "" and one["hidden_reason"] is None
        listed = (await ctx.client.get(f"/ideas/{idea}/comments", headers=who)).json()["items"]
        assert [(c["id"], c["body"]) for c in listed] == [(cid, ""), (later["id"], "a later comment")]
        batch = (await ctx.client.post("/comments/batch", json={"ids": [cid]}, headers=who)).json()["items"]
        assert batch[0]["body"] == ""
        pages = (await ctx.client.post("/comments/by-ideas", json={"idea_ids": [str(idea)]}, headers=who)).json()
        assert pages["pages"][str(idea)]["items"][0]["body"] == ""
    for role in ("MODERATOR", "PRODUCT_TEAM", "ADMIN"):
        one = (await ctx.client.get(f"/comments/{cid}", headers=ctx.caller("PARTNER", role).headers)).json()
        assert one["body"] == "rude words" and one["hidden_reason"] == "rude", role

    # Hiding again (even with another reason, by another moderator) changes nothing.
    admin = ctx.caller("EMPLOYEE", "ADMIN")
    again = await ctx.client.post(url, json={"reason": "second reason"}, headers=admin.headers)
    assert again.status_code == 200 and again.json() == hidden.json()
    assert len(await ctx.outbox(HIDDEN, cid)) == 1


async def test_concurrent_hides_publish_one_event(ctx: Ctx) -> None:
    idea = await ctx.propose()
    cids = [(await ctx.added(idea, ctx.caller()))["id"] for _ in range(4)]
    moderators = [ctx.caller("CUSTOMER", "MODERATOR") for _ in range(6)]
    answers = await asyncio.gather(
        *(
            ctx.client.post(f"/comments/{cid}/hide", json={"reason": f"r{i}"}, headers=m.headers)
            for cid in cids
            for i, m in enumerate(moderators)
        )
    )
    assert all(a.status_code == 200 for a in answers)
    for cid in cids:
        assert len({a.json()["hidden_reason"] for a in answers if a.json()["id"] == cid}) == 1
        assert len(await ctx.outbox(HIDDEN, cid)) == 1


# --- flags ------------------------------------------------------------------------------------------------------------
async def test_flag_once_per_member(ctx: Ctx) -> None:
    idea = await ctx.propose()
    cid = (await ctx.added(idea, ctx.caller()))["id"]
    url = f"/comments/{cid}/flags"
    first, second = ctx.caller(), ctx.caller("SUPPLIER")
    assert (await ctx.client.post(url, json={"reason": "spam"}, headers=first.headers)).json() == {"flagged": True}
    assert (await ctx.client.post(url, json={"reason": "spam!"}, headers=first.headers)).json() == {"flagged": False}
    assert (await ctx.client.post(url, json={"reason": "off topic"}, headers=second.headers)).json() == {
        "flagged": True
    }
    assert_problem(await ctx.client.post(url, json={"reason": ""}, headers=ctx.caller().headers), 400, "BAD_USER_INPUT")
    assert_problem(await ctx.client.post(url, json={"reason": "x"}), 401, "UNAUTHENTICATED")
    assert_problem(
        await ctx.client.post(f"/comments/{uuid.uuid4()}/flags", json={"reason": "x"}, headers=first.headers),
        404,
        "NOT_FOUND",
    )

    moderator = ctx.caller("CUSTOMER", "MODERATOR")
    assert (await ctx.client.get(f"/comments/{cid}", headers=moderator.headers)).json()["flag_count"] == 2
    assert (await ctx.client.get(f"/comments/{cid}", headers=first.headers)).json()["flag_count"] is None


async def test_concurrent_flags_by_one_member_count_once(ctx: Ctx) -> None:
    idea = await ctx.propose()
    cid = (await ctx.added(idea, ctx.caller()))["id"]
    member = ctx.caller()
    answers = await asyncio.gather(
        *(ctx.client.post(f"/comments/{cid}/flags", json={"reason": "spam"}, headers=member.headers) for _ in range(5))
    )
    assert sorted(a.json()["flagged"] for a in answers) == [False] * 4 + [True]
    moderator = ctx.caller("CUSTOMER", "ADMIN")
    assert (await ctx.client.get(f"/comments/{cid}", headers=moderator.headers)).json()["flag_count"] == 1


# --- pages ----------------------------------------------------------------------------------------------------------
async def test_pagination_has_no_gaps_or_duplicates(ctx: Ctx) -> None:
    idea = await ctx.propose()
    member = ctx.caller()
    created = [(await ctx.added(idea, member, f"comment {i}"))["id"] for i in range(23)]

    seen: list[str] = []
    after: str | None = None
    for _ in range(10):
        params: dict[str, Any] = {"first": 5, **({"after": after} if after else {})}
        page = (await ctx.client.get(f"/ideas/{idea}/comments", params=params)).json()
        assert page["total_count"] == 23
        seen += [c["id"] for c in page["items"]]
        after = page["end_cursor"]
        if not page["has_next_page"]:
            break
    assert seen == created
    # Past the end: an empty page, no cursor.
    tail = (await ctx.client.get(f"/ideas/{idea}/comments", params={"first": 5, "after": after})).json()
    assert tail["items"] == [] and tail["has_next_page"] is False and tail["end_cursor"] is None

    zero = (await ctx.client.get(f"/ideas/{idea}/comments", params={"first": 0})).json()
    assert zero["items"] == [] and zero["total_count"] == 23 and zero["has_next_page"] is True


async def test_pagination_breaks_ties_on_id(ctx: Ctx) -> None:
    """Comments written in the same microsecond still page without gaps or duplicates."""
    idea = await ctx.propose()
    same_time = datetime.now(UTC)
    ids = sorted(uuid.uuid4() for _ in range(7))
    async with ctx.app.state.runtime.engine.begin() as conn:
        for cid in ids:
            await conn.execute(
                text("INSERT INTO comment (id, idea_id, author_id, body, created_at) VALUES (:i, :d, :a, 'tie', :t)"),
                {"i": cid, "d": idea, "a": uuid.uuid4(), "t": same_time},
            )
    seen: list[str] = []
    after = None
    for _ in range(10):
        params: dict[str, Any] = {"first": 2, **({"after": after} if after else {})}
        page = (await ctx.client.get(f"/ideas/{idea}/comments", params=params)).json()
        seen += [c["id"] for c in page["items"]]
        after = page["end_cursor"]
        if not page["has_next_page"]:
            break
    assert seen == [str(i) for i in ids]


@pytest.mark.parametrize(
    "params",
    [
        {"first": 101},
        {"first": -1},
        {"first": "ten"},
        {"after": "garbage!"},
        {"after": "WyJ4Il0"},
        {"after": "x" * 600},
        {"after": encode_cursor("comments", ["9999-12-31T23:59:59-14:00", str(uuid.uuid4())])},
    ],
)
async def test_bad_page_arguments_are_bad_user_input(ctx: Ctx, params: dict[str, Any]) -> None:
    idea = await ctx.propose()
    r = await ctx.client.get(f"/ideas/{idea}/comments", params=params)
    assert 400 <= r.status_code < 500 and r.json()["code"] == "BAD_USER_INPUT"


async def test_by_ideas_batches_first_pages_in_constant_queries(ctx: Ctx) -> None:
    member = ctx.caller("CUSTOMER")
    empty, three, five = await ctx.propose(), await ctx.propose(), await ctx.propose()
    restricted = await ctx.propose(("SUPPLIER",))
    made: dict[uuid.UUID, list[str]] = {empty: [], three: [], five: []}
    for idea, n in ((three, 3), (five, 5)):
        made[idea] = [(await ctx.added(idea, member, f"c{i}"))["id"] for i in range(n)]
    await ctx.added(restricted, ctx.caller("SUPPLIER"))

    asked = [str(five), str(uuid.uuid4()), str(restricted), str(empty), str(three), str(five)]
    r = await ctx.client.post("/comments/by-ideas", json={"idea_ids": asked, "first": 2}, headers=member.headers)
    assert r.status_code == 200, r.text
    pages = r.json()["pages"]
    assert list(pages) == [str(five), str(empty), str(three)]  # unknown and invisible left out
    for idea, ids in made.items():
        page = pages[str(idea)]
        assert [c["id"] for c in page["items"]] == ids[:2]
        assert page["total_count"] == len(ids) and page["has_next_page"] is (len(ids) > 2)
        if ids:  # the cursor continues with the single-idea list
            rest = await ctx.client.get(f"/ideas/{idea}/comments", params={"first": 10, "after": page["end_cursor"]})
            assert [c["id"] for c in rest.json()["items"]] == ids[2:]
        else:
            assert page["end_cursor"] is None

    statements: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        if "comment" in statement or "idea_visibility" in statement:
            statements.append(statement)

    engine = ctx.app.state.runtime.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        await ctx.client.post("/comments/by-ideas", json={"idea_ids": [str(three)], "first": 2})
        few = len(statements)
        statements.clear()
        many = [str(await ctx.propose()) for _ in range(30)] + [str(three), str(five)]
        statements.clear()
        r = await ctx.client.post("/comments/by-ideas", json={"idea_ids": many, "first": 2})
        assert len(r.json()["pages"]) == 32
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert few == len(statements) == 3


async def test_by_ideas_and_batch_limits(ctx: Ctx) -> None:
    too_many = [str(uuid.uuid4()) for _ in range(101)]
    assert_problem(await ctx.client.post("/comments/by-ideas", json={"idea_ids": too_many}), 422, "BAD_USER_INPUT")
    assert_problem(
        await ctx.client.post("/comments/by-ideas", json={"idea_ids": [], "first": 101}), 400, "BAD_USER_INPUT"
    )
    assert (await ctx.client.post("/comments/by-ideas", json={"idea_ids": []})).json() == {"pages": {}}
    assert (await ctx.client.post("/comments/batch", json={"ids": []})).json() == {"items": []}
    assert_problem(await ctx.client.post("/comments/batch", json={"ids": ["x"]}), 422, "BAD_USER_INPUT")


async def test_batch_keeps_the_order_asked_and_drops_unknown(ctx: Ctx) -> None:
    idea = await ctx.propose()
    a, b = (await ctx.added(idea, ctx.caller()))["id"], (await ctx.added(idea, ctx.caller()))["id"]
    r = await ctx.client.post("/comments/batch", json={"ids": [b, str(uuid.uuid4()), a, b]})
    assert [c["id"] for c in r.json()["items"]] == [b, a]


# --- events in ---------------------------------------------------------------------------------------------------
async def test_redelivered_proposed_event_changes_nothing(ctx: Ctx) -> None:
    payload = proposed(("SUPPLIER",))
    envelope = Envelope.of(payload)
    runner = await ctx.consumers()
    assert await runner.apply(CONSUMER, envelope, payload, on_idea_proposed) is True
    await ctx.merge(payload.idea_id)
    assert await runner.apply(CONSUMER, envelope, payload, on_idea_proposed) is False
    supplier = ctx.caller("SUPPLIER")
    # Still merged (the redelivery did not reset the status) and still supplier-only.
    assert_problem(await ctx.add(payload.idea_id, supplier), 409, "CONFLICT")
    assert_problem(await ctx.client.get(f"/ideas/{payload.idea_id}/comments"), 404, "NOT_FOUND")

    # The same proposal under a new event id (republished after the dedup window) changes nothing either.
    copy = Envelope.of(payload)
    assert await runner.apply(CONSUMER, copy, payload, on_idea_proposed) is True
    assert_problem(await ctx.add(payload.idea_id, supplier), 409, "CONFLICT")


async def test_merge_before_its_proposal_is_retried_not_lost(ctx: Ctx) -> None:
    payload = proposed()
    merged = IdeaMerged(idea_id=payload.idea_id, target_id=uuid.uuid4(), merged_by=uuid.uuid4())
    merged_envelope = Envelope.of(merged)
    runner = await ctx.consumers()
    with pytest.raises(Exception, match=str(payload.idea_id)):
        await runner.apply(CONSUMER, merged_envelope, merged, on_idea_merged)
    # Not recorded in the inbox: the redelivery will apply it.
    async with ctx.app.state.runtime.engine.connect() as conn:
        seen = (
            await conn.execute(text("SELECT count(*) FROM inbox WHERE event_id = :e"), {"e": merged_envelope.id})
        ).scalar_one()
    assert seen == 0
    await runner.apply(CONSUMER, Envelope.of(payload), payload, on_idea_proposed)
    assert await runner.apply(CONSUMER, merged_envelope, merged, on_idea_merged) is True
    assert_problem(await ctx.add(payload.idea_id, ctx.caller()), 409, "CONFLICT")


async def test_proposed_event_over_real_nats_reaches_the_consumer(ctx: Ctx) -> None:
    await ctx.consumers()
    payload = proposed(("PARTNER",))
    envelope: Envelope = Envelope.of(payload)
    nc = ctx.app.state.runtime.nc
    await nc.jetstream().publish(
        envelope.type, envelope.model_dump_json().encode(), headers={"Nats-Msg-Id": str(envelope.id)}
    )
    partner = ctx.caller("PARTNER")

    async def status() -> int:
        code = (await ctx.client.get(f"/ideas/{payload.idea_id}/comments", headers=partner.headers)).status_code
        assert code == 200, f"status {code}"
        return code

    # The consumer may first catch up on the stream: a bounded wait for the idea to be known.
    assert await eventually(status, timeout=30, what="the proposal consumed") == 200
    async with ctx.app.state.runtime.engine.connect() as conn:
        inbox = (await conn.execute(text("SELECT consumer FROM inbox WHERE event_id = :e"), {"e": envelope.id})).all()
    assert [r.consumer for r in inbox] == [CONSUMER]
    # The visibility came along: a customer still cannot see it.
    assert_problem(
        await ctx.client.get(f"/ideas/{payload.idea_id}/comments", headers=ctx.caller().headers), 404, "NOT_FOUND"
    )


async def test_added_event_reaches_the_comments_stream(ctx: Ctx) -> None:
    """The relay publishes the outbox row to JetStream, once, under the event id."""
    idea = await ctx.propose()
    js = ctx.app.state.runtime.nc.jetstream()
    durable = f"test-{uuid.uuid4().hex[:8]}"
    config = ConsumerConfig(durable_name=durable, deliver_policy=DeliverPolicy.NEW, filter_subject=ADDED)
    sub = await js.pull_subscribe(ADDED, durable=durable, stream="COMMENTS", config=config)
    try:
        comment = await ctx.added(idea, ctx.caller())
        event_id = (await ctx.outbox(ADDED, comment["id"]))[0]["id"]
        # A later comment: the relay publishes the outbox in order, so once the later event is in
        # the stream, a second copy of the first one would be there too.
        later = await ctx.added(idea, ctx.caller())
        found: list[tuple[Any, dict[str, Any]]] = []  # (headers, event) of the first comment's messages

        async def later_arrived() -> bool:
            try:
                msgs = await sub.fetch(100, timeout=0.2)
            except TimeoutError:  # nats.errors.TimeoutError, or asyncio's when the fetch's own wait expires
                msgs = []
            arrived = False
            for msg in msgs:
                await msg.ack()
                body = orjson.loads(msg.data)
                if body["data"]["comment_id"] == comment["id"]:
                    found.append((msg.headers, body))
                arrived = arrived or body["data"]["comment_id"] == later["id"]
            return arrived

        # bounded: the relay polls every 0.2 s and wakes on NOTIFY
        await eventually(later_arrived, timeout=20, interval=0, what="the later comment's event in the stream")
    finally:
        await js.delete_consumer("COMMENTS", durable)
    assert all(headers is not None and headers["Nats-Msg-Id"] == event_id for headers, _ in found)
    assert [e["id"] for _, e in found] == [event_id]
