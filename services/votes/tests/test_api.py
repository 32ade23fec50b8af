"""Votes service on a real PostgreSQL and nats-server: the HTTP API, the events it writes to its
outbox, its projection of idea states and the move of votes on merges."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import Any

import orjson
import pytest
from sqlalchemy import text

from devstack.testing import started_consumers
from devstack.waiting import eventually
from services.votes.consumers import SUBSCRIPTIONS, on_idea_merged, on_idea_proposed, on_idea_status_changed
from services.votes.service import VoteService
from shared.events.catalogue import (
    IdeaMerged,
    IdeaProposed,
    IdeaStatus,
    IdeaStatusChanged,
    VoteCast,
    VoteChanged,
    VotesMoved,
    VoteWithdrawn,
    subject_of,
)
from shared.events.envelope import Envelope
from shared.events.failures import RetryLater
from shared.uow import UnitOfWork

S = IdeaStatus
(DURABLE_IDEAS,) = (sub.durable for sub in SUBSCRIPTIONS)


# --- helpers ---------------------------------------------------------------------------------------
async def start(service_app: Any) -> tuple[Any, Any]:
    app, client = await service_app("votes")
    await started_consumers(app)
    return app, client


def bearer(
    tokens: Any, who: uuid.UUID, kind: str = "CUSTOMER", role: str = "MEMBER", scope: str = "read-write"
) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens.issue(who, kind, role, scope=scope)}"}


async def apply(app: Any, payload: Any, handler: Any, subject_id: uuid.UUID, envelope: Envelope | None = None) -> bool:
    envelope = envelope or Envelope.of(payload)
    return bool(await app.state.runtime.consumers.apply(DURABLE_IDEAS, envelope, payload, handler))


async def propose(
    app: Any, visible_to: tuple[str, ...] = (), author: uuid.UUID | None = None, idea_id: uuid.UUID | None = None
) -> uuid.UUID:
    idea_id = idea_id or uuid.uuid4()
    payload = IdeaProposed(
        idea_id=idea_id,
        author_id=author or uuid.uuid4(),
        title="An idea",
        tags=["x"],
        visible_to=list(visible_to),
        status=S.OPEN,
        created_at="2026-01-01T00:00:00Z",
    )
    assert await apply(app, payload, on_idea_proposed, idea_id)
    return idea_id


def status_event(idea_id: uuid.UUID, from_status: IdeaStatus, to_status: IdeaStatus) -> IdeaStatusChanged:
    return IdeaStatusChanged(
        idea_id=idea_id, from_status=from_status, to_status=to_status, note=None, changed_by=uuid.uuid4()
    )


async def change_status(app: Any, idea_id: uuid.UUID, from_status: IdeaStatus, to_status: IdeaStatus) -> None:
    assert await apply(app, status_event(idea_id, from_status, to_status), on_idea_status_changed, idea_id)


def merged_event(source: uuid.UUID, target: uuid.UUID) -> IdeaMerged:
    return IdeaMerged(idea_id=source, target_id=target, merged_by=uuid.uuid4())


async def events_about(app: Any, *ids: uuid.UUID) -> list[tuple[str, dict[str, Any]]]:
    """(subject, data) of the outbox rows about these ideas, oldest first."""
    async with app.state.runtime.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT subject, payload FROM outbox WHERE "
                "(convert_from(payload, 'UTF8')::jsonb -> 'data' ->> 'idea_id') = ANY(:ids) OR "
                "(convert_from(payload, 'UTF8')::jsonb -> 'data' ->> 'source_id') = ANY(:ids) "
                "ORDER BY created_at, id"
            ),
            {"ids": [str(i) for i in ids]},
        )
        return [(r.subject, orjson.loads(bytes(r.payload))["data"]) for r in rows]


async def votes_on(app: Any, idea_id: uuid.UUID) -> dict[uuid.UUID, int]:
    async with app.state.runtime.engine.connect() as conn:
        rows = await conn.execute(text("SELECT voter_id, weight FROM vote WHERE idea_id = :i"), {"i": idea_id})
        return {r.voter_id: r.weight for r in rows}


async def idea_status(app: Any, idea_id: uuid.UUID) -> str | None:
    async with app.state.runtime.engine.connect() as conn:
        row = (await conn.execute(text("SELECT status FROM idea_state WHERE idea_id = :i"), {"i": idea_id})).first()
        return row.status if row else None


async def backend_pid(session: Any) -> int:
    return int((await session.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def blocked_or_done(app: Any, holder: int, task: asyncio.Task[Any]) -> bool:
    """True once `task` has finished, or once another backend waits for a lock that the backend
    `holder` holds (pg_stat_activity, read afresh: a new transaction each time)."""
    if task.done():
        return True
    async with app.state.runtime.engine.connect() as conn:
        waiting = await conn.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE wait_event_type = 'Lock' AND :h = ANY(pg_blocking_pids(pid))"
            ),
            {"h": holder},
        )
        return bool(waiting.scalar_one())


async def cast(
    client: Any,
    tokens: Any,
    idea_id: uuid.UUID,
    voter: uuid.UUID,
    weight: int | None = None,
    kind: str = "CUSTOMER",
    role: str = "MEMBER",
) -> Any:
    body = None if weight is None else {"weight": weight}
    return await client.put(f"/ideas/{idea_id}/vote", json=body, headers=bearer(tokens, voter, kind, role))


# --- cast / change / same weight / withdraw --------------------------------------------------------
async def test_cast_change_same_weight_and_withdraw_write_exact_events(service_app: Any, tokens: Any) -> None:
    app, client = await start(service_app)
    idea_id, voter = await propose(app), uuid.uuid4()

    r = await cast(client, tokens, idea_id, voter, 2, kind="PARTNER")
    assert r.status_code == 200, r.text
    first = r.json()
    assert (first["idea_id"], first["voter_id"], first["weight"]) == (str(idea_id), str(voter), 2)
    assert set(first) == {"idea_id", "voter_id", "weight", "cast_at"}
    events = await events_about(app, idea_id)
    assert [s for s, _ in events] == [subject_of(VoteCast)]
    assert events[0][1] == {
        "idea_id": str(idea_id),
        "voter_id": str(voter),
        "voter_kind": "PARTNER",
        "weight": 2,
        "cast_at": events[0][1]["cast_at"],
    }

    r = await cast(client, tokens, idea_id, voter, 3, kind="PARTNER")
    assert r.status_code == 200 and r.json()["weight"] == 3
    assert r.json()["cast_at"] == first["cast_at"], "a weight change keeps the vote's cast time"
    events = await events_about(app, idea_id)
    assert [s for s, _ in events] == [subject_of(VoteCast), subject_of(VoteChanged)]
    changed = events[1][1]
    assert (changed["old_weight"], changed["new_weight"], changed["voter_kind"]) == (2, 3, "PARTNER")

    r = await cast(client, tokens, idea_id, voter, 3, kind="PARTNER")  # same weight: idempotent
    assert r.status_code == 200 and r.json() == {**first, "weight": 3}
    assert len(await events_about(app, idea_id)) == 2

    r = await client.delete(f"/ideas/{idea_id}/vote", headers=bearer(tokens, voter, "PARTNER"))
    assert r.status_code == 200 and r.json() == {"removed": True}
    events = await events_about(app, idea_id)
    assert events[-1] == (
        subject_of(VoteWithdrawn),
        {"idea_id": str(idea_id), "voter_id": str(voter), "voter_kind": "PARTNER", "weight": 3},
    )
    assert await votes_on(app, idea_id) == {}

    r = await client.delete(f"/ideas/{idea_id}/vote", headers=bearer(tokens, voter, "PARTNER"))
    assert r.status_code == 200 and r.json() == {"removed": False}
    assert len(await events_about(app, idea_id)) == 3


async def test_weight_defaults_to_one(service_app: Any, tokens: Any) -> None:
    app, client = await start(service_app)
    idea_id, voter = await propose(app), uuid.uuid4()
    r = await cast(client, tokens, idea_id, voter)  # no body at all
    assert r.status_code == 200 and r.json()["weight"] == 1
    r = await client.put(f"/ideas/{idea_id}/vote", json={}, headers=bearer(tokens, uuid.uuid4()))
    assert r.status_code == 200 and r.json()["weight"] == 1


@pytest.mark.parametrize(
    ("weight", "status"), [(0, 400), (4, 400), (-1, 400), ("x", 422), ("2", 422), (True, 422), (2.5, 422), (None, 422)]
)
async def test_bad_weights_are_bad_user_input(service_app: Any, tokens: Any, weight: Any, status: int) -> None:
    app, client = await start(service_app)
    idea_id, voter = await propose(app), uuid.uuid4()
    r = await client.put(f"/ideas/{idea_id}/vote", json={"weight": weight}, headers=bearer(tokens, voter))
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "BAD_USER_INPUT"
    assert await votes_on(app, idea_id) == {} and await events_about(app, idea_id) == []


async def test_malformed_requests_are_4xx_never_500(service_app: Any, tokens: Any) -> None:
    app, client = await start(service_app)
    voter = uuid.uuid4()
    r = await client.put("/ideas/not-a-uuid/vote", json={"weight": 1}, headers=bearer(tokens, voter))
    assert r.status_code == 422 and r.json()["code"] == "BAD_USER_INPUT"
    idea_id = await propose(app)
    r = await client.put(
        f"/ideas/{idea_id}/vote",
        content=b"{oops",
        headers={**bearer(tokens, voter), "content-type": "application/json"},
    )
    assert r.status_code == 422 and r.json()["code"] == "BAD_USER_INPUT"
    r = await client.put(f"/ideas/{idea_id}/vote", json={"weight": 1})
    assert r.status_code == 401 and r.json()["code"] == "UNAUTHENTICATED"
    r = await client.put(f"/ideas/{idea_id}/vote", json={"weight": 1}, headers={"Authorization": "Bearer a.b.c"})
    assert r.status_code == 401 and r.json()["code"] == "UNAUTHENTICATED"
    r = await client.put(f"/ideas/{idea_id}/vote", json={"weight": 1}, headers=bearer(tokens, voter, kind="ALIEN"))
    assert r.status_code == 403 and r.json()["code"] == "FORBIDDEN"
    assert await votes_on(app, idea_id) == {}


async def test_read_only_api_key_cannot_vote_or_withdraw(service_app: Any, tokens: Any) -> None:
    app, client = await start(service_app)
    idea_id, voter = await propose(app), uuid.uuid4()
    assert (await cast(client, tokens, idea_id, voter, 2)).status_code == 200
    read_only = bearer(tokens, voter, scope="read")
    r = await client.put(f"/ideas/{idea_id}/vote", json={"weight": 3}, headers=read_only)
    assert r.status_code == 403 and r.json()["code"] == "FORBIDDEN"
    r = await client.delete(f"/ideas/{idea_id}/vote", headers=read_only)
    assert r.status_code == 403 and r.json()["code"] == "FORBIDDEN"
    assert await votes_on(app, idea_id) == {voter: 2}
    r = await client.post("/votes/mine", json={"idea_ids": [str(idea_id)]}, headers=read_only)  # reading is fine
    assert r.status_code == 200 and [v["weight"] for v in r.json()["items"]] == [2]


# --- refusals from the idea projection --------------------------------------------------------------
async def test_unknown_idea_is_not_found(service_app: Any, tokens: Any) -> None:
    app, client = await start(service_app)
    idea_id, voter = uuid.uuid4(), uuid.uuid4()
    r = await cast(client, tokens, idea_id, voter, 1)
    assert r.status_code == 404 and r.json()["code"] == "NOT_FOUND"
    r = await client.delete(f"/ideas/{idea_id}/vote", headers=bearer(tokens, voter))
    assert r.status_code == 404 and r.json()["code"] == "NOT_FOUND"
    assert await votes_on(app, idea_id) == {} and await events_about(app, idea_id) == []


async def test_invisible_idea_is_not_found_but_author_staff_and_kind_may_vote(service_app: Any, tokens: Any) -> None:
    app, client = await start(service_app)
    author = uuid.uuid4()
    idea_id = await propose(app, visible_to=("SUPPLIER",), author=author)
    customer = uuid.uuid4()
    r = await cast(client, tokens, idea_id, customer, 2, kind="CUSTOMER")
    assert r.status_code == 404 and r.json()["code"] == "NOT_FOUND"
    r = await cast(client, tokens, idea_id, customer, 2, kind="CUSTOMER", role="MODERATOR")
    assert r.status_code == 404
    r = await client.delete(f"/ideas/{idea_id}/vote", headers=bearer(tokens, customer))
    assert r.status_code == 404 and r.json()["code"] == "NOT_FOUND"
    assert await votes_on(app, idea_id) == {}, "a refused cast is rolled back"

    allowed = [
        (author, "CUSTOMER", "MEMBER"),
        (uuid.uuid4(), "CUSTOMER", "PRODUCT_TEAM"),
        (uuid.uuid4(), "PARTNER", "ADMIN"),
        (uuid.uuid4(), "SUPPLIER", "MEMBER"),
    ]
    for who, kind, role in allowed:
        r = await cast(client, tokens, idea_id, who, 3, kind=kind, role=role)
        assert r.status_code == 200, (kind, role, r.text)
    assert await votes_on(app, idea_id) == {who: 3 for who, _, _ in allowed}
    kinds = sorted(d["voter_kind"] for s, d in await events_about(app, idea_id))
    assert kinds == ["CUSTOMER", "CUSTOMER", "PARTNER", "SUPPLIER"]


async def test_votes_only_on_open_under_review_and_planned(service_app: Any, tokens: Any) -> None:
    app, client = await start(service_app)
    idea_id, voter, other = await propose(app), uuid.uuid4(), uuid.uuid4()
    assert (await cast(client, tokens, idea_id, voter, 1)).status_code == 200
    for prev, status, accepted in [
        (S.OPEN, S.UNDER_REVIEW, True),
        (S.UNDER_REVIEW, S.PLANNED, True),
        (S.PLANNED, S.IN_PROGRESS, False),
        (S.IN_PROGRESS, S.SHIPPED, False),
    ]:
        await change_status(app, idea_id, prev, status)
        assert await idea_status(app, idea_id) == status
        r = await cast(client, tokens, idea_id, other, 2)
        if accepted:
            assert r.status_code == 200, (status, r.text)
            await client.delete(f"/ideas/{idea_id}/vote", headers=bearer(tokens, other))
        else:
            assert r.status_code == 409 and r.json()["code"] == "CONFLICT", status
            # An existing vote cannot be changed either, and nothing is written.
            r = await cast(client, tokens, idea_id, voter, 3)
            assert r.status_code == 409
    assert await votes_on(app, idea_id) == {voter: 1}
    assert Counter(s for s, _ in await events_about(app, idea_id)) == {
        subject_of(VoteCast): 3,
        subject_of(VoteWithdrawn): 2,
    }

    # Withdrawing stays possible on a closed (not merged) idea.
    r = await client.delete(f"/ideas/{idea_id}/vote", headers=bearer(tokens, voter))
    assert r.json() == {"removed": True}


async def test_declined_then_reopened_idea(service_app: Any, tokens: Any) -> None:
    app, client = await start(service_app)
    idea_id, voter = await propose(app), uuid.uuid4()
    await change_status(app, idea_id, S.OPEN, S.DECLINED)
    r = await cast(client, tokens, idea_id, voter, 1)
    assert r.status_code == 409 and r.json()["code"] == "CONFLICT"
    await change_status(app, idea_id, S.DECLINED, S.OPEN)
    assert (await cast(client, tokens, idea_id, voter, 1)).status_code == 200


async def test_status_changes_out_of_order_end_in_the_newest_state(service_app: Any, tokens: Any) -> None:
    """The IDEAS stream's ordering (shared/events/catalogue.py): a change newer than the last one
    applied applies at once; an older one arriving later is superseded and changes nothing."""
    app, _ = await start(service_app)
    idea_id = await propose(app)
    review = Envelope.of(status_event(idea_id, S.OPEN, S.UNDER_REVIEW), aggregate_version=2)
    planned = Envelope.of(status_event(idea_id, S.UNDER_REVIEW, S.PLANNED), aggregate_version=3)
    assert await apply(app, IdeaStatusChanged.model_validate(planned.data), on_idea_status_changed, idea_id, planned)
    assert await idea_status(app, idea_id) == "PLANNED"
    assert await apply(app, IdeaStatusChanged.model_validate(review.data), on_idea_status_changed, idea_id, review)
    assert await idea_status(app, idea_id) == "PLANNED", "the older change is superseded"
    assert not await apply(app, IdeaStatusChanged.model_validate(review.data), on_idea_status_changed, idea_id, review)


async def test_status_change_for_an_unknown_idea_is_retried(service_app: Any) -> None:
    app, _ = await start(service_app)
    idea_id = uuid.uuid4()
    with pytest.raises(RetryLater):
        await change_status(app, idea_id, S.OPEN, S.UNDER_REVIEW)
    await propose(app, idea_id=idea_id)
    await change_status(app, idea_id, S.OPEN, S.UNDER_REVIEW)
    assert await idea_status(app, idea_id) == "UNDER_REVIEW"


async def test_redelivered_proposal_changes_nothing(service_app: Any, tokens: Any) -> None:
    app, client = await start(service_app)
    idea_id = uuid.uuid4()
    payload = IdeaProposed(
        idea_id=idea_id,
        author_id=uuid.uuid4(),
        title="t",
        tags=[],
        visible_to=[],
        status=S.OPEN,
        created_at="2026-01-01T00:00:00Z",
    )
    envelope = Envelope.of(payload)
    assert await apply(app, payload, on_idea_proposed, idea_id, envelope)
    await change_status(app, idea_id, S.OPEN, S.DECLINED)
    assert not await apply(app, payload, on_idea_proposed, idea_id, envelope), "seen before: no-op"
    # Even a second proposal event (another id) never resets a later state.
    assert await apply(app, payload, on_idea_proposed, idea_id)
    assert await idea_status(app, idea_id) == "DECLINED"
    assert (await cast(client, tokens, idea_id, uuid.uuid4(), 1)).status_code == 409


# --- merges ------------------------------------------------------------------------------------------
async def test_merge_moves_votes_keeping_the_higher_weight(service_app: Any, tokens: Any) -> None:
    app, client = await start(service_app)
    source, target = await propose(app), await propose(app)
    a, b, c, d = sorted(uuid.uuid4() for _ in range(4))
    for voter, idea_id, weight, kind in [
        (a, source, 1, "CUSTOMER"),
        (a, target, 3, "CUSTOMER"),
        (b, source, 3, "SUPPLIER"),
        (b, target, 1, "SUPPLIER"),
        (c, source, 2, "PARTNER"),
        (d, target, 2, "EMPLOYEE"),
    ]:
        assert (await cast(client, tokens, idea_id, voter, weight, kind=kind)).status_code == 200
    c_cast_at = (
        await client.post("/votes/mine", json={"idea_ids": [str(source)]}, headers=bearer(tokens, c, "PARTNER"))
    ).json()["items"][0]["cast_at"]

    envelope = Envelope.of(merged_event(source, target))
    assert await apply(app, merged_event(source, target), on_idea_merged, source, envelope)

    assert await idea_status(app, source) == "MERGED"
    assert await votes_on(app, source) == {}
    assert await votes_on(app, target) == {a: 3, b: 3, c: 2, d: 2}
    moved = [d_ for s, d_ in await events_about(app, source) if s == subject_of(VotesMoved)]
    assert moved == [
        {
            "source_id": str(source),
            "target_id": str(target),
            "moves": [
                {
                    "voter_id": str(a),
                    "voter_kind": "CUSTOMER",
                    "source_weight": 1,
                    "target_old_weight": 3,
                    "target_new_weight": 3,
                },
                {
                    "voter_id": str(b),
                    "voter_kind": "SUPPLIER",
                    "source_weight": 3,
                    "target_old_weight": 1,
                    "target_new_weight": 3,
                },
                {
                    "voter_id": str(c),
                    "voter_kind": "PARTNER",
                    "source_weight": 2,
                    "target_old_weight": None,
                    "target_new_weight": 2,
                },
            ],
        }
    ]
    # The moved vote keeps its cast time.
    mine = (
        await client.post(
            "/votes/mine", json={"idea_ids": [str(source), str(target)]}, headers=bearer(tokens, c, "PARTNER")
        )
    ).json()["items"]
    assert [(v["idea_id"], v["weight"], v["cast_at"]) for v in mine] == [(str(target), 2, c_cast_at)]

    # Redelivery of the merge (and of the proposal) changes nothing: no double move.
    assert not await apply(app, merged_event(source, target), on_idea_merged, source, envelope)
    assert await votes_on(app, target) == {a: 3, b: 3, c: 2, d: 2}
    assert len([s for s, _ in await events_about(app, source) if s == subject_of(VotesMoved)]) == 1

    # The merged idea refuses votes; withdrawing there removes nothing; the target's votes stay.
    r = await cast(client, tokens, source, uuid.uuid4(), 1)
    assert r.status_code == 409 and r.json()["code"] == "CONFLICT"
    r = await client.delete(f"/ideas/{source}/vote", headers=bearer(tokens, c, "PARTNER"))
    assert r.status_code == 200 and r.json() == {"removed": False}
    assert await votes_on(app, target) == {a: 3, b: 3, c: 2, d: 2}


async def test_merge_into_an_unknown_target_is_retried_and_changes_nothing_meanwhile(
    service_app: Any, tokens: Any
) -> None:
    app, client = await start(service_app)
    source, target, voter = await propose(app), uuid.uuid4(), uuid.uuid4()
    assert (await cast(client, tokens, source, voter, 2)).status_code == 200
    envelope = Envelope.of(merged_event(source, target))
    with pytest.raises(RetryLater):
        await apply(app, merged_event(source, target), on_idea_merged, source, envelope)
    assert await idea_status(app, source) == "OPEN" and await votes_on(app, source) == {voter: 2}
    await propose(app, idea_id=target)
    assert await apply(app, merged_event(source, target), on_idea_merged, source, envelope)
    assert await votes_on(app, target) == {voter: 2} and await votes_on(app, source) == {}


async def test_merge_of_an_idea_without_votes_still_reports_the_move(service_app: Any) -> None:
    app, _ = await start(service_app)
    source, target = await propose(app), await propose(app)
    assert await apply(app, merged_event(source, target), on_idea_merged, source)
    assert await events_about(app, source) == [
        (subject_of(VotesMoved), {"source_id": str(source), "target_id": str(target), "moves": []})
    ]


async def test_merge_after_status_changed_to_merged(service_app: Any, tokens: Any) -> None:
    """The status change to MERGED may arrive first: the merged event still moves the votes,
    and a status change arriving after the merged event is moot."""
    app, client = await start(service_app)
    source, target, voter = await propose(app), await propose(app), uuid.uuid4()
    assert (await cast(client, tokens, source, voter, 3)).status_code == 200
    await change_status(app, source, S.OPEN, S.MERGED)
    assert (await cast(client, tokens, source, uuid.uuid4(), 1)).status_code == 409
    assert await apply(app, merged_event(source, target), on_idea_merged, source)
    assert await votes_on(app, target) == {voter: 3}

    other, other_voter = await propose(app), uuid.uuid4()
    assert (await cast(client, tokens, other, other_voter, 1)).status_code == 200
    assert await apply(app, merged_event(other, target), on_idea_merged, other)
    await change_status(app, other, S.OPEN, S.MERGED)  # late: no error, nothing to do
    assert await idea_status(app, other) == "MERGED"
    assert await votes_on(app, target) == {voter: 3, other_voter: 1}


async def test_merge_into_an_idea_merged_meanwhile_follows_the_chain(service_app: Any, tokens: Any) -> None:
    app, client = await start(service_app)
    a, b, c = await propose(app), await propose(app), await propose(app)
    va, vb = uuid.uuid4(), uuid.uuid4()
    assert (await cast(client, tokens, a, va, 2)).status_code == 200
    assert (await cast(client, tokens, b, vb, 1)).status_code == 200
    assert await apply(app, merged_event(b, c), on_idea_merged, b)  # handled before a -> b
    assert await apply(app, merged_event(a, b), on_idea_merged, a)
    assert await votes_on(app, c) == {va: 2, vb: 1}
    assert await votes_on(app, a) == {} and await votes_on(app, b) == {}
    moved = [d for s, d in await events_about(app, a) if s == subject_of(VotesMoved) and d["source_id"] == str(a)]
    assert [(m["target_id"], [x["voter_id"] for x in m["moves"]]) for m in moved] == [(str(c), [str(va)])]


async def test_a_cast_waiting_on_a_merge_in_progress_is_refused(service_app: Any, tokens: Any) -> None:
    """The merge holds the source's idea_state row FOR UPDATE; a cast on the source waits for it
    and then sees MERGED: no vote slips onto the source after the move."""
    app, client = await start(service_app)
    source, target, voter = await propose(app), await propose(app), uuid.uuid4()
    maker = app.state.runtime.sessionmaker
    async with maker() as session:
        uow = UnitOfWork(session)
        await VoteService(uow).idea_merged(merged_event(source, target))
        holder = await backend_pid(session)
        pending = asyncio.create_task(cast(client, tokens, source, voter, 2))
        # The cast runs into the merge's lock (or, were it not to wait, has already answered).
        await eventually(lambda: blocked_or_done(app, holder, pending), what="the cast waiting on the merge")
        await uow.commit()
        r = await pending
    assert r.status_code == 409 and r.json()["code"] == "CONFLICT"
    assert await votes_on(app, source) == {} and await votes_on(app, target) == {}


async def test_a_cast_in_flight_when_the_merge_starts_is_moved(service_app: Any, tokens: Any) -> None:
    """The cast holds the source's row FOR SHARE until it commits; the merge waits for it and
    moves the vote together with the others."""
    app, _ = await start(service_app)
    source, target, voter = await propose(app), await propose(app), uuid.uuid4()
    caller = await app.state.jwt_verifier.verify(bearer(tokens, voter)["Authorization"].split()[1])
    maker = app.state.runtime.sessionmaker
    async with maker() as session:
        uow = UnitOfWork(session)
        await VoteService(uow).cast(caller, source, 3)
        holder = await backend_pid(session)
        merging = asyncio.create_task(apply(app, merged_event(source, target), on_idea_merged, source))
        # The merge runs into the cast's lock (or, were it not to wait, has already finished).
        await eventually(lambda: blocked_or_done(app, holder, merging), what="the merge waiting on the cast")
        await uow.commit()
    assert await merging
    assert await votes_on(app, source) == {} and await votes_on(app, target) == {voter: 3}
    subjects = [s for s, _ in await events_about(app, source)]
    assert subjects == [subject_of(VoteCast), subject_of(VotesMoved)]


# --- concurrency -------------------------------------------------------------------------------------
async def test_concurrent_casts_by_one_stakeholder_give_one_vote_and_a_consistent_event_chain(
    service_app: Any, tokens: Any
) -> None:
    app, client = await start(service_app)
    idea_id, voter = await propose(app), uuid.uuid4()
    weights = [1 + i % 3 for i in range(20)]
    results = await asyncio.gather(*(cast(client, tokens, idea_id, voter, w) for w in weights))
    assert [r.status_code for r in results] == [200] * 20
    rows = await votes_on(app, idea_id)
    assert list(rows) == [voter]
    final = rows[voter]
    events = await events_about(app, idea_id)
    casts = [d for s, d in events if s == subject_of(VoteCast)]
    changes = [d for s, d in events if s == subject_of(VoteChanged)]
    assert len(casts) == 1 and len(casts) + len(changes) == len(events)
    assert all(c["old_weight"] != c["new_weight"] for c in changes)
    # The changes chain from the first weight to the final one: replaying them in any order
    # gives the stored weight, and each weight is left as often as it is reached (Euler path).
    assert casts[0]["weight"] + sum(c["new_weight"] - c["old_weight"] for c in changes) == final
    balance = Counter({w: 0 for w in (1, 2, 3)})
    for c in changes:
        balance[c["old_weight"]] -= 1
        balance[c["new_weight"]] += 1
    expected = Counter({w: 0 for w in (1, 2, 3)})
    expected[casts[0]["weight"]] -= 1
    expected[final] += 1
    assert balance == expected


async def test_concurrent_casts_by_fifty_stakeholders_give_fifty_votes(service_app: Any, tokens: Any) -> None:
    app, client = await start(service_app)
    idea_id = await propose(app)
    voters = [uuid.uuid4() for _ in range(50)]
    results = await asyncio.gather(*(cast(client, tokens, idea_id, v, 1 + i % 3) for i, v in enumerate(voters)))
    assert [r.status_code for r in results] == [200] * 50
    assert await votes_on(app, idea_id) == {v: 1 + i % 3 for i, v in enumerate(voters)}
    assert [s for s, _ in await events_about(app, idea_id)] == [subject_of(VoteCast)] * 50


# --- /votes/mine ----------------------------------------------------------------------------------
async def test_mine_returns_only_the_callers_votes_among_the_ids(service_app: Any, tokens: Any) -> None:
    app, client = await start(service_app)
    one, two, three = await propose(app), await propose(app), await propose(app)
    me, someone = uuid.uuid4(), uuid.uuid4()
    await cast(client, tokens, one, me, 1)
    await cast(client, tokens, two, me, 3)
    await cast(client, tokens, three, me, 2)
    await cast(client, tokens, one, someone, 2)
    r = await client.post(
        "/votes/mine", json={"idea_ids": [str(one), str(two), str(two), str(uuid.uuid4())]}, headers=bearer(tokens, me)
    )
    assert r.status_code == 200
    got = {(v["idea_id"], v["voter_id"], v["weight"]) for v in r.json()["items"]}
    assert got == {(str(one), str(me), 1), (str(two), str(me), 3)}
    r = await client.post("/votes/mine", json={"idea_ids": []}, headers=bearer(tokens, me))
    assert r.json() == {"items": []}


async def test_mine_needs_a_token_and_at_most_500_ids(service_app: Any, tokens: Any) -> None:
    _, client = await start(service_app)
    r = await client.post("/votes/mine", json={"idea_ids": []})
    assert r.status_code == 401 and r.json()["code"] == "UNAUTHENTICATED"
    r = await client.post(
        "/votes/mine", json={"idea_ids": [str(uuid.uuid4()) for _ in range(501)]}, headers=bearer(tokens, uuid.uuid4())
    )
    assert r.status_code == 422 and r.json()["code"] == "BAD_USER_INPUT"
    r = await client.post("/votes/mine", json={"idea_ids": ["nope"]}, headers=bearer(tokens, uuid.uuid4()))
    assert r.status_code == 422 and r.json()["code"] == "BAD_USER_INPUT"


# --- real NATS -------------------------------------------------------------------------------------
async def test_idea_events_published_to_nats_reach_the_projection(service_app: Any, tokens: Any) -> None:
    app, client = await start(service_app)
    idea_id, voter = uuid.uuid4(), uuid.uuid4()
    payload = IdeaProposed(
        idea_id=idea_id,
        author_id=uuid.uuid4(),
        title="via NATS",
        tags=[],
        visible_to=[],
        status=S.OPEN,
        created_at="2026-01-01T00:00:00Z",
    )
    js = app.state.runtime.nc.jetstream()
    for event in (payload, status_event(idea_id, S.OPEN, S.UNDER_REVIEW)):
        envelope = Envelope.of(event)
        await js.publish(envelope.type, envelope.model_dump_json().encode(), headers={"Nats-Msg-Id": str(envelope.id)})

    async def status() -> str | None:
        now = await idea_status(app, idea_id)
        assert now == "UNDER_REVIEW", now
        return now

    assert await eventually(status, what="both events consumed") == "UNDER_REVIEW"
    r = await cast(client, tokens, idea_id, voter, 2)
    assert r.status_code == 200, r.text

    # ...and the vote's event leaves through the outbox relay to the VOTES stream.
    async def sent_at() -> Any:
        async with app.state.runtime.engine.connect() as conn:
            return (
                await conn.execute(
                    text(
                        "SELECT sent_at FROM outbox WHERE convert_from(payload, 'UTF8')::jsonb->'data'->>'idea_id' = :i"
                    ),
                    {"i": str(idea_id)},
                )
            ).scalar_one()

    sent = await eventually(sent_at, what="the vote's outbox row sent")
    assert sent is not None


async def test_a_cast_on_the_target_in_flight_when_the_merge_starts_counts_in_the_move(
    service_app: Any, tokens: Any
) -> None:
    """The merge locks the target's row too: a cast on the target that was in flight is committed
    before the move reads the target's votes, so the higher-weight rule sees it."""
    app, client = await start(service_app)
    source, target, voter = await propose(app), await propose(app), uuid.uuid4()
    assert (await cast(client, tokens, source, voter, 1)).status_code == 200
    caller = await app.state.jwt_verifier.verify(bearer(tokens, voter)["Authorization"].split()[1])
    async with app.state.runtime.sessionmaker() as session:
        uow = UnitOfWork(session)
        await VoteService(uow).cast(caller, target, 3)
        holder = await backend_pid(session)
        merging = asyncio.create_task(apply(app, merged_event(source, target), on_idea_merged, source))
        # The merge runs into the cast's lock on the target (or, were it not to wait, has finished).
        await eventually(lambda: blocked_or_done(app, holder, merging), what="the merge waiting on the cast")
        await uow.commit()
    assert await merging
    assert await votes_on(app, target) == {voter: 3}
    (moved,) = [d for s, d in await events_about(app, source) if s == subject_of(VotesMoved)]
    assert moved["moves"] == [
        {
            "voter_id": str(voter),
            "voter_kind": "CUSTOMER",
            "source_weight": 1,
            "target_old_weight": 3,
            "target_new_weight": 3,
        }
    ]
