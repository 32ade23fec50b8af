"""DataLoaders: a page of ideas with author, myVote and first comments costs a constant number
of upstream calls, whatever the page size. The services are the real ones; the lists ask for
the test's own ideas (its tag), newest first."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

import pytest

from gateway.ids import encode_global_id
from tests.gateway.support import Gateway, World

PAGE = """
query Page($first: Int!, $tag: String) {
  ideas(first: $first, tag: $tag, sort: NEWEST) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges {
      cursor
      node {
        id title score
        author { id displayName }
        myVote { weight voter { displayName } idea { id } }
        comments(first: 3) {
          totalCount
          edges { cursor node { id body author { displayName } idea { id } } }
        }
      }
    }
  }
}
"""


async def seed(world: World, ideas: int) -> str:
    """`ideas` ideas by seven authors, four comments each; the caller voted (weight 3) on every
    other one, starting with the newest (as the ideas service lists them)."""
    me, *authors = await world.stakeholders("Me", *(f"Author {i}" for i in range(7)))
    created = await asyncio.gather(*(world.idea(authors[n % len(authors)], title=f"Idea {n}") for n in range(ideas)))
    await world.known(*created)
    listed = await world.call("ideas", "GET", "/ideas", params={"tag": world.tag, "sort": "NEWEST", "first": 100})
    newest_first = [item["id"] for item in listed["items"]]
    writes: list[Awaitable[object]] = [
        world.comment(idea, authors[(n + k) % len(authors)]) for n, idea in enumerate(created) for k in range(4)
    ]
    writes += [world.vote(idea, me, weight=3) for n, idea in enumerate(newest_first) if n % 2 == 0]
    await asyncio.gather(*writes)
    return me.token


@pytest.mark.asyncio
@pytest.mark.parametrize("size", [10, 50])
async def test_page_of_ideas_costs_constant_calls(gateway: Gateway, world: World, size: int) -> None:
    token = await seed(world, size)
    result = await gateway.execute(PAGE, {"first": size, "tag": world.tag}, token=token)
    assert result.errors is None, result.errors
    assert result.data is not None
    edges = result.data["ideas"]["edges"]
    assert len(edges) == size
    assert edges[0]["node"]["author"]["displayName"].startswith("Author")
    assert edges[0]["node"]["myVote"]["weight"] == 3
    assert edges[1]["node"]["myVote"] is None
    assert len(edges[0]["node"]["comments"]["edges"]) == 3
    assert edges[0]["node"]["comments"]["totalCount"] == 4
    # The idea of a vote/comment comes from the page already: no extra idea reads.
    assert edges[0]["node"]["myVote"]["idea"]["id"] == edges[0]["node"]["id"]
    calls = gateway.endpoints()
    assert calls == {
        "ideas GET /ideas": 1,
        "votes POST /votes/mine": 1,
        "comments POST /comments/by-ideas": 1,
        # idea authors, then comment authors and voters (a second tick): still constant
        "stakeholders POST /stakeholders/batch": 2,
    }, calls


@pytest.mark.asyncio
async def test_anonymous_page_makes_no_vote_call(gateway: Gateway, world: World) -> None:
    await seed(world, 5)
    result = await gateway.execute(PAGE, {"first": 5, "tag": world.tag})
    assert result.errors is None
    assert result.data is not None
    assert all(edge["node"]["myVote"] is None for edge in result.data["ideas"]["edges"])
    assert gateway.count("votes") == 0


@pytest.mark.asyncio
async def test_node_resolves_every_type(gateway: Gateway, world: World) -> None:
    author = await world.stakeholder()
    idea = await world.idea(author)
    await world.known(idea)
    comment = await world.comment(idea, author)
    query = """query($a: ID!, $b: ID!, $c: ID!) {
      a: node(id: $a) { __typename id ... on Stakeholder { displayName } }
      b: node(id: $b) { __typename id ... on Idea { title } }
      c: node(id: $c) { __typename id ... on Comment { body } }
      d: node(id: "bm9wZQ==") { id }
    }"""
    variables = {
        "a": encode_global_id("Stakeholder", author.id),
        "b": encode_global_id("Idea", idea),
        "c": encode_global_id("Comment", comment),
    }
    result = await gateway.execute(query, variables)
    assert result.errors is None, result.errors
    assert result.data == {
        "a": {"__typename": "Stakeholder", "id": variables["a"], "displayName": "Ada"},
        "b": {"__typename": "Idea", "id": variables["b"], "title": "An idea"},
        "c": {"__typename": "Comment", "id": variables["c"], "body": "Nice"},
        "d": None,
    }


@pytest.mark.asyncio
async def test_invisible_ideas_are_missing_not_forbidden(gateway: Gateway, world: World) -> None:
    author, outsider, insider = await asyncio.gather(
        world.stakeholder(kind="EMPLOYEE"), world.stakeholder(kind="CUSTOMER"), world.stakeholder(kind="EMPLOYEE")
    )
    secret = await world.idea(author, visible_to=["EMPLOYEE"])
    await world.known(secret)
    comment = await world.comment(secret, author)
    query = """query($i: ID!, $c: ID!, $tag: String) {
      idea(id: $i) { id } node(id: $c) { id } ideas(tag: $tag) { totalCount } }"""
    variables = {"i": encode_global_id("Idea", secret), "c": encode_global_id("Comment", comment), "tag": world.tag}
    for token in (None, outsider.token):
        result = await gateway.execute(query, variables, token=token)
        assert result.errors is None
        assert result.data == {"idea": None, "node": None, "ideas": {"totalCount": 0}}
    result = await gateway.execute(query, variables, token=insider.token)
    assert result.data is not None
    assert result.data["idea"] == {"id": variables["i"]}
    assert result.data["node"] == {"id": variables["c"]}


@pytest.mark.asyncio
async def test_cursors_page_through(gateway: Gateway, world: World) -> None:
    author = await world.stakeholder()
    for n in reversed(range(5)):  # newest first: Idea 0 is the newest
        await world.idea(author, title=f"Idea {n}")
    query = """query($after: String, $tag: String) { ideas(first: 2, after: $after, tag: $tag, sort: NEWEST) {
      edges { cursor node { title } } pageInfo { hasNextPage endCursor } } }"""
    titles: list[str] = []
    after = None
    for _ in range(5):
        result = await gateway.execute(query, {"after": after, "tag": world.tag})
        assert result.errors is None, result.errors
        assert result.data is not None
        page = result.data["ideas"]
        titles += [edge["node"]["title"] for edge in page["edges"]]
        # the service's end cursor is passed through, and it is also the last edge's cursor
        assert page["pageInfo"]["endCursor"] == page["edges"][-1]["cursor"]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert titles == [f"Idea {n}" for n in range(5)]
    # resuming from an edge inside a page (its own cursor, the service's) continues right after it
    first = await gateway.execute(query, {"after": None, "tag": world.tag})
    assert first.data is not None
    inner_cursor = first.data["ideas"]["edges"][0]["cursor"]
    resumed = await gateway.execute(query, {"after": inner_cursor, "tag": world.tag})
    assert resumed.data is not None
    assert [e["node"]["title"] for e in resumed.data["ideas"]["edges"]] == ["Idea 1", "Idea 2"]


@pytest.mark.asyncio
async def test_total_count_is_only_computed_when_asked_for(gateway: Gateway, world: World) -> None:
    await seed(world, 3)
    without = await gateway.execute(
        "query($tag: String) { ideas(first: 2, tag: $tag) { edges { node { title } } } }", {"tag": world.tag}
    )
    with_total = await gateway.execute(
        "query($tag: String) { ideas(first: 2, tag: $tag) { ...Counted } }"
        " fragment Counted on IdeaConnection { totalCount }",
        {"tag": world.tag},
    )
    assert without.errors is None and with_total.errors is None
    assert with_total.data == {"ideas": {"totalCount": 3}}
    seen = [
        r.url.params.get("with_total")
        for r in gateway.requests("ideas")
        if r.url.path == "/ideas" and r.method == "GET"
    ]
    assert seen == ["false", None]
