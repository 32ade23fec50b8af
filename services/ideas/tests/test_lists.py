"""Lists (sorts, keyset pagination, filters, segments, search) and similar ideas."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.ideas.tests.helpers import caller, deliver, problem, propose, unique
from shared.events.catalogue import CommentAdded, StakeholderKind, VoteCast

K = StakeholderKind


async def vote(app: FastAPI, idea_id: str, kind: StakeholderKind, weight: int) -> None:
    event = VoteCast(
        idea_id=uuid.UUID(idea_id), voter_id=uuid.uuid4(), voter_kind=kind, weight=weight, cast_at=datetime.now(UTC)
    )
    await deliver(app, "ideas-votes", event)


async def comment(app: FastAPI, idea_id: str) -> None:
    event = CommentAdded(
        comment_id=uuid.uuid4(),
        idea_id=uuid.UUID(idea_id),
        author_id=uuid.uuid4(),
        parent_id=None,
        official=False,
        created_at=datetime.now(UTC),
    )
    await deliver(app, "ideas-comments", event)


async def all_pages(client: httpx.AsyncClient, params: dict[str, Any], first: int) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    after = None
    for _ in range(50):
        query = {**params, "first": first, **({"after": after} if after else {})}
        r = await client.get("/ideas", params=query)
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["items"]) <= first
        seen.extend(page["items"])
        if not page["has_next_page"]:
            assert page["total_count"] == len(seen)
            return seen
        assert len(page["items"]) == first and page["end_cursor"]
        after = page["end_cursor"]
    raise AssertionError("pagination did not end")


@pytest.fixture
async def ranked(service_app, tokens):  # type: ignore[no-untyped-def]
    """Seven ideas under one tag with known scores, comment counts and ties."""
    app, client = await service_app("ideas")
    me = caller(tokens)
    tag = unique("rank-")
    plan = [  # (votes as (kind, weight), comments)
        ([(K.CUSTOMER, 3), (K.SUPPLIER, 2)], 1),
        ([(K.CUSTOMER, 1)], 4),
        ([(K.SUPPLIER, 3), (K.SUPPLIER, 2)], 0),
        ([], 2),
        ([(K.CUSTOMER, 2), (K.CUSTOMER, 3)], 2),
        ([(K.EMPLOYEE, 1)], 0),
        ([], 0),
    ]
    ideas = []
    for votes, comments in plan:
        idea = await propose(client, me, tags=[tag])
        for kind, weight in votes:
            await vote(app, idea["id"], kind, weight)
        for _ in range(comments):
            await comment(app, idea["id"])
        ideas.append(idea)
    current = (await client.post("/ideas/batch", json={"ids": [i["id"] for i in ideas]})).json()["items"]
    return app, client, tag, current


def expected(ideas: list[dict[str, Any]], key: Callable[[dict[str, Any]], Any]) -> list[str]:
    ordered = sorted(ideas, key=lambda i: (key(i), uuid.UUID(i["id"])), reverse=True)
    return [i["id"] for i in ordered]


def weight_of(idea: dict[str, Any], kind: str) -> int:
    return int(next((t["weight"] for t in idea["tally"] if t["kind"] == kind), 0))


@pytest.mark.parametrize(
    ("sort", "key"),
    [
        ("TOP", lambda i: i["score"]),
        ("TRENDING", lambda i: i["recent_score"]),
        ("NEWEST", lambda i: i["created_at"]),
        ("MOST_DISCUSSED", lambda i: i["comment_count"]),
    ],
)
@pytest.mark.parametrize("first", [1, 2, 3, 7, 20])
async def test_sorts_and_keyset_pages_have_no_duplicates_or_gaps(ranked, sort, key, first) -> None:  # type: ignore[no-untyped-def]
    _, client, tag, ideas = ranked
    got = await all_pages(client, {"tag": tag, "sort": sort}, first)
    assert [i["id"] for i in got] == expected(ideas, key)
    assert len({i["id"] for i in got}) == 7


async def test_scores_have_ties_so_the_id_tie_break_is_exercised(ranked) -> None:  # type: ignore[no-untyped-def]
    _, _, _, ideas = ranked
    scores = [i["score"] for i in ideas]
    assert scores == [5, 1, 5, 0, 5, 1, 0]
    assert [i["comment_count"] for i in ideas] == [1, 4, 0, 2, 2, 0, 0]


async def test_default_sort_is_top_and_cursor_is_tied_to_its_sort(ranked) -> None:  # type: ignore[no-untyped-def]
    _, client, tag, ideas = ranked
    page = (await client.get("/ideas", params={"tag": tag, "first": 2})).json()
    assert [i["id"] for i in page["items"]] == expected(ideas, lambda i: i["score"])[:2]
    assert page["total_count"] == 7 and page["has_next_page"] is True
    r = await client.get("/ideas", params={"tag": tag, "sort": "NEWEST", "after": page["end_cursor"]})
    problem(r, 400, "BAD_USER_INPUT")
    empty = (await client.get("/ideas", params={"tag": tag, "first": 0})).json()
    assert empty["items"] == [] and empty["total_count"] == 7 and empty["has_next_page"] is True


async def test_segment_ranks_and_counts_by_that_kind_only(ranked) -> None:  # type: ignore[no-untyped-def]
    _, client, tag, ideas = ranked
    with_customer = [i for i in ideas if weight_of(i, "CUSTOMER")]
    assert len(with_customer) == 3
    got = await all_pages(client, {"tag": tag, "segment": "CUSTOMER"}, 2)
    assert [i["id"] for i in got] == expected(with_customer, lambda i: weight_of(i, "CUSTOMER"))
    # idea 4 (customer weight 5) before idea 0 (customer 3, though both score 5) before idea 1.
    assert [i["id"] for i in got] == [ideas[4]["id"], ideas[0]["id"], ideas[1]["id"]]
    got = await all_pages(client, {"tag": tag, "segment": "SUPPLIER"}, 1)
    assert [i["id"] for i in got] == [ideas[2]["id"], ideas[0]["id"]]
    got = await all_pages(client, {"tag": tag, "segment": "CUSTOMER", "sort": "MOST_DISCUSSED"}, 2)
    assert [i["id"] for i in got] == expected(with_customer, lambda i: i["comment_count"])
    got = await all_pages(client, {"tag": tag, "segment": "PARTNER"}, 5)
    assert got == []


async def test_status_and_search_filters(service_app, tokens) -> None:  # type: ignore[no-untyped-def]
    _, client = await service_app("ideas")
    me = caller(tokens)
    team = caller(tokens, "EMPLOYEE", "PRODUCT_TEAM")
    word, other = unique("zq"), unique("zq")
    a = await propose(client, me, title=f"Offline sync for {word}", body="Phones lose connection in tunnels")
    b = await propose(client, me, title="Bulk export", body=f"Export {word} reports as spreadsheets")
    c = await propose(client, me, title=f"Dark theme {other}", body=f"Night mode for {word} dashboards")
    await client.post(f"/ideas/{b['id']}/status", json={"status": "UNDER_REVIEW"}, headers=team.headers)

    def ids(page: dict[str, Any]) -> set[str]:
        return {i["id"] for i in page["items"]}

    page = (await client.get("/ideas", params={"search": word})).json()
    assert ids(page) == {a["id"], b["id"], c["id"]} and page["total_count"] == 3
    page = (await client.get("/ideas", params={"search": f"{word} -{other}"})).json()  # websearch syntax
    assert ids(page) == {a["id"], b["id"]}
    page = (await client.get("/ideas", params={"search": f'"export {word}"'})).json()
    assert ids(page) == {b["id"]}
    page = (await client.get("/ideas", params={"search": f"{word} connections"})).json()  # English stemming
    assert ids(page) == {a["id"]}
    page = (await client.get("/ideas", params=[("search", word), ("status", "UNDER_REVIEW")])).json()
    assert ids(page) == {b["id"]} and page["total_count"] == 1
    page = (await client.get("/ideas", params=[("search", word), ("status", "OPEN"), ("status", "OPEN")])).json()
    assert ids(page) == {a["id"], c["id"]}
    page = (await client.get("/ideas", params={"search": "   "})).json()  # blank: no filter
    assert page["total_count"] >= 3


async def test_similar_ideas(service_app, tokens) -> None:  # type: ignore[no-untyped-def]
    _, client = await service_app("ideas")
    me = caller(tokens)
    team = caller(tokens, "EMPLOYEE", "PRODUCT_TEAM")
    word = unique("zq")
    exact = await propose(client, me, title=f"Dark mode for the {word} dashboard", body="Easier on the eyes")
    close = await propose(client, me, title=f"Dashboard {word} night theme", body="Dark mode please")
    far = await propose(client, me, title=f"Export {word} reports", body="CSV and spreadsheets")
    unrelated = await propose(client, me, title=f"Something else {unique()}", body="Nothing in common")
    merged = await propose(client, me, title=f"Dark mode for the {word} dashboard!", body="Same again")
    r = await client.post(f"/ideas/{merged['id']}/merge", json={"target_id": exact["id"]}, headers=team.headers)
    assert r.status_code == 200

    r = await client.get("/ideas/similar", params={"text": f"dark mode for {word} dashboard"})
    assert r.status_code == 200, r.text
    got = [i["id"] for i in r.json()["items"]]
    assert got[0] == exact["id"]
    assert close["id"] in got and got.index(close["id"]) < (got.index(far["id"]) if far["id"] in got else 99)
    assert merged["id"] not in got and unrelated["id"] not in got
    assert len(got) <= 5

    got = [i["id"] for i in (await client.get("/ideas/similar", params={"text": word, "first": 20})).json()["items"]]
    assert set(got) >= {exact["id"], close["id"], far["id"]} and merged["id"] not in got
    got = (await client.get("/ideas/similar", params={"text": word, "first": 1})).json()["items"]
    assert len(got) == 1

    for params in ({"text": ""}, {"text": "   "}, {"text": "x", "first": 21}, {"text": "x", "first": -1}):
        problem(await client.get("/ideas/similar", params=params), 400, "BAD_USER_INPUT")
    problem(await client.get("/ideas/similar"), 422, "BAD_USER_INPUT")
    r = await client.get("/ideas/similar", params={"text": "?!*&|'():"})  # no words: trigram only, no error
    assert r.status_code == 200


async def test_total_count_is_skipped_when_not_wanted(ranked) -> None:  # type: ignore[no-untyped-def]
    _, client, tag, ideas = ranked
    counted = (await client.get("/ideas", params={"tag": tag, "first": 2})).json()
    uncounted = (await client.get("/ideas", params={"tag": tag, "first": 2, "with_total": "false"})).json()
    assert counted["total_count"] == len(ideas)
    assert uncounted["total_count"] is None
    assert uncounted["items"] == counted["items"] and uncounted["end_cursor"] == counted["end_cursor"]
