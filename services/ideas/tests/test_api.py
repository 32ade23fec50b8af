"""Ideas service HTTP API on a real PostgreSQL and nats-server: proposals, visibility, refinement,
status workflow and merges."""

from __future__ import annotations

import uuid

import httpx
import pytest

from services.ideas.tests.helpers import Person, caller, outbox, problem, propose, unique
from shared.events.catalogue import IdeaMerged, IdeaProposed, IdeaRefined, IdeaStatusChanged, subject_of


async def test_propose_normalises_stores_revision_and_stages_event(service_app, tokens) -> None:  # type: ignore[no-untyped-def]
    app, client = await service_app("ideas")
    me = caller(tokens)
    title = "  " + "T" * 139 + unique("")[:1] + "  "
    idea = await propose(
        client,
        me,
        title=title,
        body="  The body  ",
        tags=[" Mobile ", "mobile", "API-v2"],
        visible_to=["SUPPLIER", "CUSTOMER", "SUPPLIER"],
    )
    assert idea["title"] == title.strip() and len(idea["title"]) == 140
    assert idea["body"] == "The body"
    assert idea["tags"] == ["mobile", "api-v2"]
    assert idea["visible_to"] == ["CUSTOMER", "SUPPLIER"]
    assert idea["status"] == "OPEN" and idea["status_note"] is None and idea["merged_into_id"] is None
    assert idea["author_id"] == str(me.id)
    assert (idea["voters"], idea["score"], idea["tally"], idea["comment_count"]) == (0, 0, [], 0)
    assert idea["version"] == 1 and idea["created_at"] == idea["updated_at"]

    got = await client.get(f"/ideas/{idea['id']}", headers=me.headers)
    assert got.status_code == 200 and got.json() == idea
    revisions = (await client.get(f"/ideas/{idea['id']}/revisions", headers=me.headers)).json()["items"]
    assert [(r["version"], r["title"], r["body"], r["tags"], r["editor_id"]) for r in revisions] == [
        (1, idea["title"], "The body", ["mobile", "api-v2"], str(me.id))
    ]
    events = await outbox(app, idea["id"])
    assert [e["type"] for e in events] == [subject_of(IdeaProposed)]
    data = events[0]["data"]
    assert data["idea_id"] == idea["id"] and data["author_id"] == str(me.id)
    assert data["tags"] == ["mobile", "api-v2"] and data["visible_to"] == ["CUSTOMER", "SUPPLIER"]
    assert data["status"] == "OPEN"


@pytest.mark.parametrize(
    "overrides",
    [
        {"title": ""},
        {"title": "    "},
        {"title": "x" * 141},
        {"body": ""},
        {"body": "b" * 20_001},
        {"tags": [f"tag{i}" for i in range(11)]},
        {"tags": ["Not A Tag!"]},
        {"tags": ["under_score"]},
        {"tags": ["x" * 41]},
        {"tags": [""]},
        {"visible_to": ["ALIEN"]},
        {"title": None},
        {"tags": "mobile"},
    ],
)
async def test_propose_refuses_bad_input(service_app, tokens, overrides) -> None:  # type: ignore[no-untyped-def]
    _, client = await service_app("ideas")
    me = caller(tokens)
    marker = unique()
    body = {"title": f"Refused {marker}", "body": "body", "tags": [], **overrides}
    r = await client.post("/ideas", json=body, headers=me.headers)
    assert 400 <= r.status_code < 500 and r.json()["code"] == "BAD_USER_INPUT", r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    listed = (await client.get("/ideas", params={"search": marker}, headers=me.headers)).json()
    assert listed["total_count"] == 0  # nothing stored


async def test_ten_distinct_tags_after_dedupe_are_accepted(service_app, tokens) -> None:  # type: ignore[no-untyped-def]
    _, client = await service_app("ideas")
    tags = [f"tag-{i}" for i in range(10)]
    idea = await propose(client, caller(tokens), tags=[*tags, "TAG-0", " tag-1 "])
    assert idea["tags"] == tags


async def test_writes_need_a_token_and_a_writing_scope(service_app, tokens) -> None:  # type: ignore[no-untyped-def]
    _, client = await service_app("ideas")
    r = await client.post("/ideas", json={"title": "t", "body": "b"})
    problem(r, 401, "UNAUTHENTICATED")
    r = await client.post("/ideas", json={"title": "t", "body": "b"}, headers={"Authorization": "Bearer x.y.z"})
    problem(r, 401, "UNAUTHENTICATED")
    reader = caller(tokens, scope="read")
    r = await client.post("/ideas", json={"title": "t", "body": "b"}, headers=reader.headers)
    problem(r, 403, "FORBIDDEN")


async def test_visibility_matrix_on_every_read_path(service_app, tokens) -> None:  # type: ignore[no-untyped-def]
    _, client = await service_app("ideas")
    author = caller(tokens, "CUSTOMER")
    tag, word = unique("tag-"), unique("zq")
    title = f"Supplier portal {word} invoices"
    hidden = await propose(
        client, author, title=title, body=f"only suppliers {word}", tags=[tag], visible_to=["SUPPLIER"]
    )
    public = await propose(client, author, title=f"Public {word} note", body=f"everyone {word}", tags=[tag])
    viewers = {
        "anonymous": (None, False),
        "customer": (caller(tokens, "CUSTOMER"), False),
        "moderator": (caller(tokens, "CUSTOMER", "MODERATOR"), False),
        "supplier": (caller(tokens, "SUPPLIER"), True),
        "author": (author, True),
        "product team": (caller(tokens, "EMPLOYEE", "PRODUCT_TEAM"), True),
        "admin": (caller(tokens, "EMPLOYEE", "ADMIN"), True),
    }
    for name, (who, sees) in viewers.items():
        headers = who.headers if who else {}
        r = await client.get(f"/ideas/{hidden['id']}", headers=headers)
        if sees:
            assert r.status_code == 200 and r.json()["id"] == hidden["id"], name
        else:
            problem(r, 404, "NOT_FOUND")
        r = await client.get(f"/ideas/{hidden['id']}/revisions", headers=headers)
        if sees:
            assert r.status_code == 200 and len(r.json()["items"]) == 1, name
        else:
            problem(r, 404, "NOT_FOUND")
        ids = [hidden["id"], public["id"], str(uuid.uuid4())]
        batch = (await client.post("/ideas/batch", json={"ids": ids}, headers=headers)).json()["items"]
        assert [i["id"] for i in batch] == ([hidden["id"], public["id"]] if sees else [public["id"]]), name
        listed = (await client.get("/ideas", params={"tag": tag}, headers=headers)).json()
        assert {i["id"] for i in listed["items"]} == ({hidden["id"], public["id"]} if sees else {public["id"]}), name
        assert listed["total_count"] == (2 if sees else 1), name
        searched = (await client.get("/ideas", params={"search": word}, headers=headers)).json()
        assert searched["total_count"] == (2 if sees else 1), name
        similar = (await client.get("/ideas/similar", params={"text": title}, headers=headers)).json()["items"]
        assert (hidden["id"] in [i["id"] for i in similar]) is sees, name


async def test_refine_permissions_and_revisions(service_app, tokens) -> None:  # type: ignore[no-untyped-def]
    app, client = await service_app("ideas")
    author = caller(tokens, "CUSTOMER")
    other = caller(tokens, "CUSTOMER")
    team = caller(tokens, "EMPLOYEE", "PRODUCT_TEAM")
    idea = await propose(client, author, title="First title", body="First body", tags=["one"])
    url = f"/ideas/{idea['id']}"

    problem(await client.patch(url, json={"title": "Hijack"}, headers=other.headers), 403, "FORBIDDEN")
    problem(await client.patch(url, json={"title": "x"}), 401, "UNAUTHENTICATED")
    problem(await client.patch(url, json={}, headers=author.headers), 400, "BAD_USER_INPUT")
    problem(await client.patch(url, json={"title": " "}, headers=author.headers), 400, "BAD_USER_INPUT")
    problem(await client.patch(url, json={"tags": ["Bad Tag"]}, headers=author.headers), 400, "BAD_USER_INPUT")
    problem(await client.patch(f"/ideas/{uuid.uuid4()}", json={"title": "x"}, headers=team.headers), 404, "NOT_FOUND")

    r = await client.patch(url, json={"title": " Second title ", "tags": ["Two", "two"]}, headers=author.headers)
    assert r.status_code == 200, r.text
    second = r.json()
    assert (second["title"], second["body"], second["tags"], second["version"]) == (
        "Second title",
        "First body",
        ["two"],
        2,
    )
    assert second["updated_at"] > idea["updated_at"] and second["created_at"] == idea["created_at"]
    r = await client.patch(url, json={"body": "Team body"}, headers=team.headers)
    assert r.status_code == 200 and r.json()["version"] == 3 and r.json()["title"] == "Second title"

    revisions = (await client.get(f"{url}/revisions")).json()["items"]
    assert [(r["version"], r["title"], r["body"], r["tags"], r["editor_id"]) for r in revisions] == [
        (1, "First title", "First body", ["one"], str(author.id)),
        (2, "Second title", "First body", ["two"], str(author.id)),
        (3, "Second title", "Team body", ["two"], str(team.id)),
    ]
    assert revisions[0]["edited_at"] < revisions[1]["edited_at"] < revisions[2]["edited_at"]
    refined = [e["data"] for e in await outbox(app, idea["id"]) if e["type"] == subject_of(IdeaRefined)]
    assert sorted((d["version"], d["editor_id"], d["tags"]) for d in refined) == [
        (2, str(author.id), ["two"]),
        (3, str(team.id), ["two"]),
    ]

    # A SUPPLIER-only idea is missing (not forbidden) for a customer who is not its author.
    hidden = await propose(client, author, visible_to=["SUPPLIER"])
    r = await client.patch(f"/ideas/{hidden['id']}", json={"title": "x"}, headers=other.headers)
    problem(r, 404, "NOT_FOUND")
    supplier = caller(tokens, "SUPPLIER")
    r = await client.patch(f"/ideas/{hidden['id']}", json={"title": "x"}, headers=supplier.headers)
    problem(r, 403, "FORBIDDEN")


async def status(
    client: httpx.AsyncClient, idea_id: str, who: Person, to: str, note: str | None = None
) -> httpx.Response:
    return await client.post(f"/ideas/{idea_id}/status", json={"status": to, "note": note}, headers=who.headers)


async def test_every_allowed_status_move_and_refusals(service_app, tokens) -> None:  # type: ignore[no-untyped-def]
    app, client = await service_app("ideas")
    author = caller(tokens)
    team = caller(tokens, "EMPLOYEE", "PRODUCT_TEAM")
    admin = caller(tokens, "EMPLOYEE", "ADMIN")
    idea = await propose(client, author)
    iid = idea["id"]
    # A walk that takes each of the 10 non-merge moves at least once.
    walk = [
        "UNDER_REVIEW",
        "OPEN",
        "DECLINED",
        "OPEN",
        "UNDER_REVIEW",
        "DECLINED",
        "OPEN",
        "UNDER_REVIEW",
        "PLANNED",
        "DECLINED",
        "OPEN",
        "UNDER_REVIEW",
        "PLANNED",
        "IN_PROGRESS",
        "PLANNED",
        "IN_PROGRESS",
        "SHIPPED",
    ]
    previous = "OPEN"
    for i, to in enumerate(walk):
        who = team if i % 2 else admin
        # Refused moves first, from the current state.
        for refused in {"OPEN", "UNDER_REVIEW", "PLANNED", "IN_PROGRESS", "SHIPPED", "DECLINED"} - {to}:
            allowed_from_here = {
                "OPEN": {"UNDER_REVIEW", "DECLINED"},
                "UNDER_REVIEW": {"PLANNED", "DECLINED", "OPEN"},
                "PLANNED": {"IN_PROGRESS", "DECLINED"},
                "IN_PROGRESS": {"SHIPPED", "PLANNED"},
                "DECLINED": {"OPEN"},
            }[previous]
            if refused not in allowed_from_here:
                problem(await status(client, iid, who, refused), 409, "CONFLICT")
        r = await status(client, iid, who, to, note=f"step {i}")
        assert r.status_code == 200, (previous, to, r.text)
        assert r.json()["status"] == to and r.json()["status_note"] == f"step {i}"
        previous = to
    # SHIPPED is final; MERGED only through merge.
    for to in ("OPEN", "PLANNED", "IN_PROGRESS", "DECLINED", "UNDER_REVIEW", "MERGED", "SHIPPED"):
        problem(await status(client, iid, team, to), 409, "CONFLICT")
    fresh = await propose(client, author)
    problem(await status(client, fresh["id"], team, "MERGED"), 409, "CONFLICT")
    # Members and moderators may not triage; unknown ids are missing; bad statuses are bad input.
    problem(await status(client, fresh["id"], author, "UNDER_REVIEW"), 403, "FORBIDDEN")
    problem(
        await status(client, fresh["id"], caller(tokens, "CUSTOMER", "MODERATOR"), "UNDER_REVIEW"), 403, "FORBIDDEN"
    )
    problem(await status(client, str(uuid.uuid4()), team, "UNDER_REVIEW"), 404, "NOT_FOUND")
    problem(await status(client, fresh["id"], team, "LAUNCHED"), 422, "BAD_USER_INPUT")
    r = await status(client, fresh["id"], team, "UNDER_REVIEW", note="   ")
    assert r.json()["status_note"] is None
    assert (await client.get(f"/ideas/{fresh['id']}")).json()["status"] == "UNDER_REVIEW"

    changes = [e["data"] for e in await outbox(app, iid) if e["type"] == subject_of(IdeaStatusChanged)]
    assert len(changes) == len(walk)
    assert {(c["from_status"], c["to_status"]) for c in changes} == set(zip(["OPEN", *walk[:-1]], walk, strict=True))


async def merge(client: httpx.AsyncClient, source_id: str, target_id: str, who: Person) -> httpx.Response:
    return await client.post(f"/ideas/{source_id}/merge", json={"target_id": target_id}, headers=who.headers)


async def test_merge_rules(service_app, tokens) -> None:  # type: ignore[no-untyped-def]
    app, client = await service_app("ideas")
    author = caller(tokens)
    team = caller(tokens, "EMPLOYEE", "PRODUCT_TEAM")
    tag = unique("tag-")
    source = await propose(client, author, tags=[tag])
    target = await propose(client, author, tags=[tag])

    problem(await merge(client, source["id"], target["id"], author), 403, "FORBIDDEN")
    problem(await merge(client, source["id"], source["id"], team), 409, "CONFLICT")
    problem(await merge(client, source["id"], str(uuid.uuid4()), team), 404, "NOT_FOUND")
    problem(await merge(client, str(uuid.uuid4()), target["id"], team), 404, "NOT_FOUND")
    planned = await propose(client, author)
    await status(client, planned["id"], team, "UNDER_REVIEW")
    await status(client, planned["id"], team, "PLANNED")
    problem(await merge(client, planned["id"], target["id"], team), 409, "CONFLICT")

    r = await merge(client, source["id"], target["id"], team)
    assert r.status_code == 200, r.text
    assert r.json()["id"] == target["id"] and r.json()["status"] == "OPEN"
    merged = (await client.get(f"/ideas/{source['id']}")).json()
    assert merged["status"] == "MERGED" and merged["merged_into_id"] == target["id"]
    events = [e for e in await outbox(app, source["id"]) if e["type"] == subject_of(IdeaMerged)]
    assert [e["data"] for e in events] == [
        {"idea_id": source["id"], "target_id": target["id"], "merged_by": str(team.id)}
    ]

    # Merged ideas: final, not refinable, left out of lists unless asked for.
    problem(await merge(client, source["id"], target["id"], team), 409, "CONFLICT")
    problem(await client.patch(f"/ideas/{source['id']}", json={"title": "x"}, headers=author.headers), 409, "CONFLICT")
    problem(await status(client, source["id"], team, "OPEN"), 409, "CONFLICT")
    other = await propose(client, author, tags=[tag])
    problem(await merge(client, other["id"], source["id"], team), 409, "CONFLICT")  # into a MERGED idea
    listed = (await client.get("/ideas", params={"tag": tag})).json()
    assert {i["id"] for i in listed["items"]} == {target["id"], other["id"]}
    listed = (await client.get("/ideas", params=[("tag", tag), ("status", "MERGED")])).json()
    assert [i["id"] for i in listed["items"]] == [source["id"]] and listed["total_count"] == 1
    listed = (await client.get("/ideas", params=[("tag", tag), ("status", "MERGED"), ("status", "OPEN")])).json()
    assert listed["total_count"] == 3

    # An UNDER_REVIEW idea can be merged too, by an ADMIN.
    reviewed = await propose(client, author)
    await status(client, reviewed["id"], team, "UNDER_REVIEW")
    r = await merge(client, reviewed["id"], target["id"], caller(tokens, "EMPLOYEE", "ADMIN"))
    assert r.status_code == 200
    assert (await client.get(f"/ideas/{reviewed['id']}")).json()["merged_into_id"] == target["id"]


async def test_malformed_requests_are_4xx_problems(service_app, tokens) -> None:  # type: ignore[no-untyped-def]
    _, client = await service_app("ideas")
    me = caller(tokens)
    problem(await client.get("/ideas/not-a-uuid"), 422, "BAD_USER_INPUT")
    problem(await client.get(f"/ideas/{uuid.uuid4()}"), 404, "NOT_FOUND")
    problem(await client.get("/ideas", params={"first": 101}), 400, "BAD_USER_INPUT")
    problem(await client.get("/ideas", params={"first": -1}), 400, "BAD_USER_INPUT")
    problem(await client.get("/ideas", params={"sort": "RANDOM"}), 422, "BAD_USER_INPUT")
    problem(await client.get("/ideas", params={"status": "LAUNCHED"}), 422, "BAD_USER_INPUT")
    problem(await client.get("/ideas", params={"segment": "ALIEN"}), 422, "BAD_USER_INPUT")
    problem(await client.get("/ideas", params={"tag": "Not a tag"}), 400, "BAD_USER_INPUT")
    for cursor in ("%%%", "bm90IGpzb24", "WzEsMl0", "WyJzY29yZSIsIngiLCJ5Il0"):
        problem(await client.get("/ideas", params={"after": cursor}), 400, "BAD_USER_INPUT")
    problem(await client.post("/ideas/batch", json={"ids": [str(uuid.uuid4())] * 501}), 422, "BAD_USER_INPUT")
    problem(await client.post("/ideas/batch", json={"ids": ["nope"]}), 422, "BAD_USER_INPUT")
    r = await client.post("/ideas", content=b"{not json", headers={**me.headers, "content-type": "application/json"})
    problem(r, 422, "BAD_USER_INPUT")
    problem(
        await client.post(f"/ideas/{uuid.uuid4()}/merge", json={"target_id": "x"}, headers=me.headers),
        422,
        "BAD_USER_INPUT",
    )


async def test_nul_characters_are_bad_input_never_a_500(service_app, tokens) -> None:  # type: ignore[no-untyped-def]
    """PostgreSQL text cannot hold NUL: found by the acceptance suite as 500s (UNAVAILABLE through
    the gateway) on propose, refine, status notes, search and similar."""
    _, client = await service_app("ideas")
    me, staff = caller(tokens), caller(tokens, "EMPLOYEE", "PRODUCT_TEAM")
    idea = await propose(client, me)
    nul = "\x00"
    bodies = [{"title": f"a{nul}", "body": "b"}, {"title": "t", "body": f"b{nul}"}]
    for body in [*bodies, {"title": "t", "body": "b", "tags": [nul]}]:
        problem(await client.post("/ideas", json=body, headers=me.headers), 400, "BAD_USER_INPUT")
    r = await client.patch(f"/ideas/{idea['id']}", json={"title": "x\x00"}, headers=me.headers)
    problem(r, 400, "BAD_USER_INPUT")
    note = {"status": "UNDER_REVIEW", "note": "n\x00"}
    problem(await client.post(f"/ideas/{idea['id']}/status", json=note, headers=staff.headers), 400, "BAD_USER_INPUT")
    problem(await client.get("/ideas", params={"search": "a\x00b"}), 400, "BAD_USER_INPUT")
    problem(await client.get("/ideas/similar", params={"text": "a\x00b"}), 400, "BAD_USER_INPUT")
    got = (await client.get(f"/ideas/{idea['id']}", headers=me.headers)).json()
    assert (got["status"], got["version"]) == ("OPEN", 1)  # nothing changed
