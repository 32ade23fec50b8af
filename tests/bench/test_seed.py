"""The bulk path leaves exactly the state the public API leaves.

One small random history (stakeholders with roles, restricted ideas, Zipf votes, threaded
comments by staff and members, every status, merges) is applied once through the public GraphQL
API on one platform and once through the bulk seeder on another. Then what the API shows (per
idea: score, voters, tally, commentCount, status...; the TOP orders) and every service's tables,
projections included (ids and timestamps translated to natural keys), must be equal."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import httpx
import pytest

from bench.seed import Dataset, SeedConfig, bulk_load, hash_password, replay_through_api
from devstack.stack import Stack
from devstack.waiting import eventually
from tests.bench.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, pg_url

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CONFIG = SeedConfig(
    stakeholders=20,
    ideas=30,
    votes=200,
    comments=40,
    seed=7,
    span_days=0,
    merged_share=0.07,
    restricted_share=0.2,
    staff_share=0.1,
    moderator_share=0.05,
)
STATUSES = ["OPEN", "UNDER_REVIEW", "PLANNED", "IN_PROGRESS", "SHIPPED", "DECLINED", "MERGED"]
IDEA_FIELDS = (
    "title score voters tally { kind voters weight } commentCount status statusNote visibleTo tags "
    "author { displayName kind } mergedInto { title }"
)
ALL_IDEAS = (
    "query($s: [IdeaStatus!]) { ideas(first: 100, status: $s) { totalCount edges { node { " + IDEA_FIELDS + " } } } }"
)
RANKED = (
    "query($sort: IdeaSort, $segment: StakeholderKind) { ideas(first: 100, sort: $sort, segment: $segment) "
    "{ edges { node { title score tally { kind weight } commentCount } } } }"
)
SETTLE_SECONDS = 90


def api_view(stack: Stack) -> dict[str, Any]:
    """What the API shows: every idea (as an ADMIN, every status) and the rankings, ties among
    equal keys put in title order (ids differ between the two platforms; the API breaks ties
    on id)."""
    with httpx.Client(timeout=30) as client:

        def call(query: str, token: str | None = None, **variables: Any) -> dict[str, Any]:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            body = client.post(stack.graphql_url, json={"query": query, "variables": variables}, headers=headers)
            answer = body.json()
            assert not answer.get("errors"), answer
            return answer["data"]  # type: ignore[no-any-return]

        login = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }"
        admin = call(login, e=ADMIN_EMAIL, p=ADMIN_PASSWORD)["login"]["token"]
        ideas = call(ALL_IDEAS, admin, s=STATUSES)["ideas"]
        view: dict[str, Any] = {
            "ideas": sorted((e["node"] for e in ideas["edges"]), key=lambda n: n["title"]),
            "total": ideas["totalCount"],
        }

        def ranking(key: str, token: str | None, **variables: Any) -> list[tuple[int, str]]:
            nodes = [e["node"] for e in call(RANKED, token, **variables)["ideas"]["edges"]]
            if key == "score":
                keys = [n["score"] for n in nodes]
            elif key == "comments":
                keys = [n["commentCount"] for n in nodes]
            else:
                keys = [sum(t["weight"] for t in n["tally"] if t["kind"] == key) for n in nodes]
            assert keys == sorted(keys, reverse=True), f"not in {key} order: {keys}"
            return sorted(zip(keys, (n["title"] for n in nodes), strict=True), key=lambda kt: (-kt[0], kt[1]))

        view["top"] = ranking("score", admin, sort="TOP")
        view["top anonymous"] = ranking("score", None, sort="TOP")
        view["top partner"] = ranking("PARTNER", admin, sort="TOP", segment="PARTNER")
        view["most discussed"] = ranking("comments", admin, sort="MOST_DISCUSSED")
        view["trending titles"] = sorted(
            e["node"]["title"] for e in call(RANKED, admin, sort="TRENDING")["ideas"]["edges"]
        )
    return view


async def db_view(stack: Stack) -> dict[str, Any]:
    """Every service's tables, ids replaced by natural keys (e-mail, idea title, comment body),
    timestamps left out; no pending outbox rows."""
    base = pg_url(stack)
    conns = {name: await asyncpg.connect(f"{base}/{name}") for name in ("stakeholders", "ideas", "votes", "comments")}
    try:
        s, i, v, c = conns["stakeholders"], conns["ideas"], conns["votes"], conns["comments"]
        email = {r["id"]: r["email"] for r in await s.fetch("SELECT id, email FROM stakeholder")}
        title = {r["id"]: r["title"] for r in await i.fetch("SELECT id, title FROM idea")}
        body = {r["id"]: r["body"] for r in await c.fetch("SELECT id, body FROM comment")}

        def rows(
            records: list[asyncpg.Record],
            *,
            ideas: tuple[str, ...] = (),
            people: tuple[str, ...] = (),
            comments: tuple[str, ...] = (),
        ) -> list[tuple[Any, ...]]:
            out = []
            for record in records:
                row = dict(record)
                for k in ideas:
                    row[k] = title.get(row[k], row[k]) if row[k] is not None else None
                for k in people:
                    row[k] = email.get(row[k], row[k]) if row[k] is not None else None
                for k in comments:
                    row[k] = body.get(row[k], row[k]) if row[k] is not None else None
                out.append(tuple((k, val) for k, val in row.items()))
            return sorted(out, key=repr)

        kinds = ", ".join(f"voters_{k}, weight_{k}" for k in ("customer", "supplier", "partner", "employee"))
        view = {
            "stakeholder": rows(
                await s.fetch("SELECT email, display_name, kind, role, organization, expertise FROM stakeholder")
            ),
            "idea_activity": rows(
                await s.fetch("SELECT stakeholder_id, idea_id, activity FROM idea_activity"),
                people=("stakeholder_id",),
                ideas=("idea_id",),
            ),
            "idea_tags": rows(await s.fetch("SELECT idea_id, tags FROM idea_tags"), ideas=("idea_id",)),
            "idea": rows(
                await i.fetch(
                    f"SELECT title, body, tags, visible_to, status, status_note, merged_into_id, version, author_id, "
                    f"voters, score, {kinds}, recent_score, comment_count FROM idea"
                ),
                ideas=("merged_into_id",),
                people=("author_id",),
            ),
            "idea_revision": rows(
                await i.fetch("SELECT idea_id, version, title, body, tags, editor_id FROM idea_revision"),
                ideas=("idea_id",),
                people=("editor_id",),
            ),
            "idea_score_day": rows(await i.fetch("SELECT idea_id, day, delta FROM idea_score_day"), ideas=("idea_id",)),
            "vote": rows(
                await v.fetch("SELECT idea_id, voter_id, weight, previous_weight, voter_kind FROM vote"),
                ideas=("idea_id",),
                people=("voter_id",),
            ),
            "idea_state": rows(
                await v.fetch("SELECT idea_id, status, visible_to, author_id, merged_into_id FROM idea_state"),
                ideas=("idea_id", "merged_into_id"),
                people=("author_id",),
            ),
            "comment": rows(
                await c.fetch("SELECT body, idea_id, author_id, parent_id, official, hidden, flag_count FROM comment"),
                ideas=("idea_id",),
                people=("author_id",),
                comments=("parent_id",),
            ),
            "idea_visibility": rows(
                await c.fetch("SELECT idea_id, visible_to, author_id, status FROM idea_visibility"),
                ideas=("idea_id",),
                people=("author_id",),
            ),
        }
        view["unsent outbox rows"] = [
            await conn.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL") for conn in conns.values()
        ]
        return view
    finally:
        for conn in conns.values():
            await conn.close()


def differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    out = []
    for key in sorted(set(a) | set(b)):
        if a.get(key) != b.get(key):
            left, right = a.get(key), b.get(key)
            if isinstance(left, list) and isinstance(right, list):
                only_a = [x for x in left if x not in right][:5]
                only_b = [x for x in right if x not in left][:5]
                out.append(f"{key}: through the API only {only_a}; bulk only {only_b}")
            else:
                out.append(f"{key}: through the API {left!r}; bulk {right!r}")
    return out


def test_dataset_covers_what_the_comparison_needs() -> None:
    ds = Dataset.generate(CONFIG)
    statuses = {idea.status for idea in ds.ideas}
    assert statuses == set(STATUSES)
    assert ds.merges and any(idea.visible_to for idea in ds.ideas)
    assert {p.role for p in ds.people} >= {"MEMBER", "PRODUCT_TEAM", "MODERATOR"}
    assert any(c.parent is not None for c in ds.comments) and any(c.official for c in ds.comments)
    assert len(ds.vote_idea) == CONFIG.votes
    pairs = set(zip(ds.vote_idea, ds.vote_voter, strict=True))
    assert len(pairs) == len(ds.vote_idea), "one vote per (idea, voter)"
    # A merge whose source and target share a voter exercises "the higher weight wins".
    by_idea: dict[int, set[int]] = {}
    for idea, voter in pairs:
        by_idea.setdefault(idea, set()).add(voter)
    assert any(by_idea.get(s, set()) & by_idea.get(t, set()) for s, t in ds.merges)


async def test_bulk_seed_leaves_the_state_the_api_leaves(two_platforms: tuple[Stack, Stack]) -> None:
    through_api, bulk = two_platforms
    ds = Dataset.generate(CONFIG)
    ds.password_hash = hash_password()
    await asyncio.to_thread(replay_through_api, ds, through_api.graphql_url, ADMIN_EMAIL, ADMIN_PASSWORD)
    await bulk_load(ds, pg_url(bulk))

    expected_db = await db_view(bulk)
    expected_api = await asyncio.to_thread(api_view, bulk)
    assert expected_db["unsent outbox rows"] == [0, 0, 0, 0]
    assert len(expected_db["vote"]) == ds.final_vote_count

    # The API platform's projections are eventually consistent: wait (bounded) until they settle.
    async def same_state() -> bool:
        actual_db = await db_view(through_api)
        actual_api = await asyncio.to_thread(api_view, through_api)
        diff = differences(actual_db, expected_db) + differences(actual_api, expected_api)
        assert not diff, "\n".join(diff)
        return True

    await eventually(same_state, timeout=SETTLE_SECONDS, interval=1.0, what="the same state through the API")
    assert expected_api["total"] == len(ds.ideas)
