"""Projections kept from votes and comments events: exact tallies, per kind, idempotent."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from devstack.testing import started_consumers
from devstack.waiting import eventually
from services.ideas.tests.helpers import caller, deliver, propose
from shared.events.catalogue import (
    CommentAdded,
    StakeholderKind,
    VoteCast,
    VoteChanged,
    VoteMove,
    VotesMoved,
    VoteWithdrawn,
)
from shared.events.envelope import Envelope
from shared.events.failures import RetryLater

K = StakeholderKind


def cast(
    idea_id: uuid.UUID, kind: StakeholderKind, weight: int, at: datetime | None = None, voter: uuid.UUID | None = None
) -> VoteCast:
    return VoteCast(
        idea_id=idea_id, voter_id=voter or uuid.uuid4(), voter_kind=kind, weight=weight, cast_at=at or datetime.now(UTC)
    )


async def idea_of(client: httpx.AsyncClient, idea_id: uuid.UUID) -> dict[str, Any]:
    r = await client.get(f"/ideas/{idea_id}")
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def numbers(idea: dict[str, Any]) -> tuple[Any, ...]:
    return idea["voters"], idea["score"], idea["recent_score"], idea["tally"]


async def test_cast_changed_withdrawn_are_exact_per_kind_and_redelivery_is_a_no_op(service_app, tokens) -> None:  # type: ignore[no-untyped-def]
    app, client = await service_app("ideas")
    idea = await propose(client, caller(tokens))
    iid = uuid.UUID(idea["id"])
    c1, c2, s1, e1 = (uuid.uuid4() for _ in range(4))

    first, env = await deliver(app, "ideas-votes", cast(iid, K.CUSTOMER, 2, voter=c1))
    assert first is True
    assert numbers(await idea_of(client, iid)) == (1, 2, 2, [{"kind": "CUSTOMER", "voters": 1, "weight": 2}])
    again, _ = await deliver(app, "ideas-votes", VoteCast.model_validate(env.data), envelope=env)
    assert again is False
    assert numbers(await idea_of(client, iid)) == (1, 2, 2, [{"kind": "CUSTOMER", "voters": 1, "weight": 2}])

    await deliver(app, "ideas-votes", cast(iid, K.EMPLOYEE, 3, voter=e1))
    await deliver(app, "ideas-votes", cast(iid, K.CUSTOMER, 1, voter=c2))
    await deliver(app, "ideas-votes", cast(iid, K.SUPPLIER, 1, voter=s1))
    assert numbers(await idea_of(client, iid)) == (
        4,
        7,
        7,
        [
            {"kind": "CUSTOMER", "voters": 2, "weight": 3},
            {"kind": "SUPPLIER", "voters": 1, "weight": 1},
            {"kind": "EMPLOYEE", "voters": 1, "weight": 3},
        ],
    )

    changed = VoteChanged(
        idea_id=iid, voter_id=c1, voter_kind=K.CUSTOMER, old_weight=2, new_weight=3, cast_at=datetime.now(UTC)
    )
    ok, env = await deliver(app, "ideas-votes", changed)
    assert ok and not (await deliver(app, "ideas-votes", changed, envelope=env))[0]
    withdrawn = VoteWithdrawn(idea_id=iid, voter_id=s1, voter_kind=K.SUPPLIER, weight=1)
    ok, env = await deliver(app, "ideas-votes", withdrawn)
    assert ok and not (await deliver(app, "ideas-votes", withdrawn, envelope=env))[0]
    assert numbers(await idea_of(client, iid)) == (
        3,
        7,
        7,
        [
            {"kind": "CUSTOMER", "voters": 2, "weight": 4},
            {"kind": "EMPLOYEE", "voters": 1, "weight": 3},
        ],
    )


async def test_deltas_commute_withdrawal_before_cast(service_app, tokens) -> None:  # type: ignore[no-untyped-def]
    app, client = await service_app("ideas")
    iid = uuid.UUID((await propose(client, caller(tokens)))["id"])
    voter = uuid.uuid4()
    await deliver(app, "ideas-votes", VoteWithdrawn(idea_id=iid, voter_id=voter, voter_kind=K.PARTNER, weight=2))
    await deliver(app, "ideas-votes", cast(iid, K.PARTNER, 2, voter=voter))
    assert numbers(await idea_of(client, iid)) == (0, 0, 0, [])


async def test_votes_moved_applies_to_source_and_target(service_app, tokens) -> None:  # type: ignore[no-untyped-def]
    app, client = await service_app("ideas")
    me = caller(tokens)
    src = uuid.UUID((await propose(client, me))["id"])
    tgt = uuid.UUID((await propose(client, me))["id"])
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await deliver(app, "ideas-votes", cast(src, K.CUSTOMER, 2, voter=a))
    await deliver(app, "ideas-votes", cast(src, K.SUPPLIER, 3, voter=b))
    await deliver(app, "ideas-votes", cast(src, K.CUSTOMER, 1, voter=c))
    await deliver(app, "ideas-votes", cast(tgt, K.SUPPLIER, 1, voter=b))
    await deliver(app, "ideas-votes", cast(tgt, K.CUSTOMER, 3, voter=c))
    moved = VotesMoved(
        source_id=src,
        target_id=tgt,
        moves=[
            VoteMove(voter_id=a, voter_kind=K.CUSTOMER, source_weight=2, target_old_weight=None, target_new_weight=2),
            VoteMove(voter_id=b, voter_kind=K.SUPPLIER, source_weight=3, target_old_weight=1, target_new_weight=3),
            VoteMove(voter_id=c, voter_kind=K.CUSTOMER, source_weight=1, target_old_weight=3, target_new_weight=3),
        ],
    )
    ok, env = await deliver(app, "ideas-votes", moved)
    assert ok
    expected_src: tuple[Any, ...] = (0, 0, 0, [])
    expected_tgt = (
        3,
        8,
        8,
        [{"kind": "CUSTOMER", "voters": 2, "weight": 5}, {"kind": "SUPPLIER", "voters": 1, "weight": 3}],
    )
    assert numbers(await idea_of(client, src)) == expected_src
    assert numbers(await idea_of(client, tgt)) == expected_tgt
    assert (await deliver(app, "ideas-votes", moved, envelope=env))[0] is False
    assert numbers(await idea_of(client, src)) == expected_src
    assert numbers(await idea_of(client, tgt)) == expected_tgt


async def test_comment_added_counts_once(service_app, tokens) -> None:  # type: ignore[no-untyped-def]
    app, client = await service_app("ideas")
    iid = uuid.UUID((await propose(client, caller(tokens)))["id"])

    def added() -> CommentAdded:
        return CommentAdded(
            comment_id=uuid.uuid4(),
            idea_id=iid,
            author_id=uuid.uuid4(),
            parent_id=None,
            official=False,
            created_at=datetime.now(UTC),
        )

    ok, env = await deliver(app, "ideas-comments", added())
    assert ok
    await deliver(app, "ideas-comments", added())
    assert (await deliver(app, "ideas-comments", CommentAdded.model_validate(env.data), envelope=env))[0] is False
    assert (await idea_of(client, iid))["comment_count"] == 2


async def test_events_for_an_unknown_idea_fail_and_leave_no_trace(service_app) -> None:  # type: ignore[no-untyped-def]
    app, _ = await service_app("ideas")
    missing = uuid.uuid4()
    event = cast(missing, K.CUSTOMER, 1)
    envelope = Envelope.of(event)
    with pytest.raises(RetryLater):
        await deliver(app, "ideas-votes", event, envelope=envelope)
    comment = CommentAdded(
        comment_id=uuid.uuid4(),
        idea_id=missing,
        author_id=uuid.uuid4(),
        parent_id=None,
        official=False,
        created_at=datetime.now(UTC),
    )
    with pytest.raises(RetryLater):
        await deliver(app, "ideas-comments", comment)
    async with app.state.runtime.sessionmaker() as session:
        seen = (
            await session.execute(text("SELECT count(*) FROM inbox WHERE event_id = :e"), {"e": envelope.id})
        ).scalar_one()
    assert seen == 0  # rolled back with the failed effect: the redelivery will be applied


async def test_trending_day_buckets_and_expiry(service_app, tokens) -> None:  # type: ignore[no-untyped-def]
    from services.ideas.service import expire_trending

    app, client = await service_app("ideas")
    iid = uuid.UUID((await propose(client, caller(tokens)))["id"])
    now = datetime.now(UTC)
    await deliver(app, "ideas-votes", cast(iid, K.CUSTOMER, 2, at=now - timedelta(days=6)))
    await deliver(app, "ideas-votes", cast(iid, K.CUSTOMER, 3, at=now - timedelta(days=6)))
    await deliver(app, "ideas-votes", cast(iid, K.SUPPLIER, 1, at=now))
    await deliver(app, "ideas-votes", cast(iid, K.PARTNER, 3, at=now - timedelta(days=9)))  # too old to trend
    idea = await idea_of(client, iid)
    assert (idea["voters"], idea["score"], idea["recent_score"]) == (4, 9, 6)

    async def buckets() -> list[tuple[Any, int]]:
        async with app.state.runtime.sessionmaker() as session:
            rows = await session.execute(
                text("SELECT day, delta FROM idea_score_day WHERE idea_id = :i ORDER BY day"), {"i": iid}
            )
            return [(r.day, r.delta) for r in rows]

    assert await buckets() == [((now - timedelta(days=6)).date(), 5), (now.date(), 1)]
    await expire_trending(app.state.runtime.sessionmaker, now)  # nothing of ours has expired yet
    assert (await idea_of(client, iid))["recent_score"] == 6
    await expire_trending(app.state.runtime.sessionmaker, now + timedelta(days=1))
    idea = await idea_of(client, iid)
    assert (idea["score"], idea["recent_score"]) == (9, 1)
    assert await buckets() == [(now.date(), 1)]
    # Idempotent: running again (another replica, the next round) subtracts nothing more.
    await expire_trending(app.state.runtime.sessionmaker, now + timedelta(days=1))
    assert (await idea_of(client, iid))["recent_score"] == 1


async def test_an_event_published_to_nats_reaches_the_consumer(service_app, tokens) -> None:  # type: ignore[no-untyped-def]
    app, client = await service_app("ideas")
    iid = uuid.UUID((await propose(client, caller(tokens)))["id"])
    later = uuid.UUID((await propose(client, caller(tokens)))["id"])
    await started_consumers(app)
    event = cast(iid, K.EMPLOYEE, 3)
    envelope = Envelope.of(event)
    js = app.state.runtime.nc.jetstream()
    for _ in range(2):  # the stream's dedup window drops the second copy; the inbox would too
        await js.publish(envelope.type, envelope.model_dump_json().encode(), headers={"Nats-Msg-Id": str(envelope.id)})
    # A later vote on another idea, for the same consumer (ideas-votes): once it is applied, so
    # is everything before it in the stream, a second copy of the first vote included.
    marker = Envelope.of(cast(later, K.CUSTOMER, 1))
    await js.publish(marker.type, marker.model_dump_json().encode(), headers={"Nats-Msg-Id": str(marker.id)})
    comment = CommentAdded(
        comment_id=uuid.uuid4(),
        idea_id=iid,
        author_id=uuid.uuid4(),
        parent_id=None,
        official=True,
        created_at=datetime.now(UTC),
    )
    cenv = Envelope.of(comment)
    await js.publish(cenv.type, cenv.model_dump_json().encode(), headers={"Nats-Msg-Id": str(cenv.id)})

    async def applied() -> dict[str, Any] | None:
        if not (await idea_of(client, later))["voters"]:
            return None
        idea = await idea_of(client, iid)
        return idea if idea["voters"] and idea["comment_count"] else None

    idea = await eventually(applied, timeout=30, what="the vote, the later vote and the comment applied")
    assert numbers(idea) == (1, 3, 3, [{"kind": "EMPLOYEE", "voters": 1, "weight": 3}])
    assert idea["comment_count"] == 1
