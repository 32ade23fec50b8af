"""DataLoaders: a page of ideas with author, myVote and first comments costs a constant number
of upstream calls, whatever the page size."""

from __future__ import annotations

import pytest

from gateway.ids import encode_global_id
from tests.gateway.fakes import FakeUpstream, Gateway, make_token

PAGE = """
query Page($first: Int!) {
  ideas(first: $first) {
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


def seed(fake: FakeUpstream, ideas: int) -> str:
    me = fake.add_stakeholder(name="Me")
    authors = [fake.add_stakeholder(name=f"Author {i}") for i in range(7)]
    for n in range(ideas):
        idea = fake.add_idea(authors[n % len(authors)], title=f"Idea {n}")
        for k in range(4):
            fake.add_comment(idea, authors[(n + k) % len(authors)])
        if n % 2 == 0:
            fake.add_vote(idea, me, weight=3)
    return make_token(me)


@pytest.mark.asyncio
@pytest.mark.parametrize("size", [10, 50])
async def test_page_of_ideas_costs_constant_calls(gateway: Gateway, fake: FakeUpstream, size: int) -> None:
    token = seed(fake, size)
    result = await gateway.execute(PAGE, {"first": size}, token=token)
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
    calls = fake.endpoints()
    assert calls == {
        "ideas GET /ideas": 1,
        "votes POST /votes/mine": 1,
        "comments POST /comments/by-ideas": 1,
        # idea authors, then comment authors and voters (a second tick): still constant
        "stakeholders POST /stakeholders/batch": 2,
    }, calls


@pytest.mark.asyncio
async def test_anonymous_page_makes_no_vote_call(gateway: Gateway, fake: FakeUpstream) -> None:
    seed(fake, 5)
    result = await gateway.execute(PAGE, {"first": 5})
    assert result.errors is None
    assert result.data is not None
    assert all(edge["node"]["myVote"] is None for edge in result.data["ideas"]["edges"])
    assert fake.count("votes") == 0


@pytest.mark.asyncio
async def test_node_resolves_every_type(gateway: Gateway, fake: FakeUpstream) -> None:
    author = fake.add_stakeholder()
    idea = fake.add_idea(author)
    comment = fake.add_comment(idea, author)
    query = """query($a: ID!, $b: ID!, $c: ID!) {
      a: node(id: $a) { __typename id ... on Stakeholder { displayName } }
      b: node(id: $b) { __typename id ... on Idea { title } }
      c: node(id: $c) { __typename id ... on Comment { body } }
      d: node(id: "bm9wZQ==") { id }
    }"""
    variables = {
        "a": encode_global_id("Stakeholder", author),
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
async def test_invisible_ideas_are_missing_not_forbidden(gateway: Gateway, fake: FakeUpstream) -> None:
    author = fake.add_stakeholder(kind="EMPLOYEE")
    secret = fake.add_idea(author, visible_to=["EMPLOYEE"])
    comment = fake.add_comment(secret, author)
    outsider = make_token(fake.add_stakeholder(kind="CUSTOMER"))
    query = """query($i: ID!, $c: ID!) { idea(id: $i) { id } node(id: $c) { id } ideas { totalCount } }"""
    variables = {"i": encode_global_id("Idea", secret), "c": encode_global_id("Comment", comment)}
    for token in (None, outsider):
        result = await gateway.execute(query, variables, token=token)
        assert result.errors is None
        assert result.data == {"idea": None, "node": None, "ideas": {"totalCount": 0}}
    insider = make_token(fake.add_stakeholder(kind="EMPLOYEE"), kind="EMPLOYEE")
    result = await gateway.execute(query, variables, token=insider)
    assert result.data is not None
    assert result.data["idea"] == {"id": variables["i"]}
    assert result.data["node"] == {"id": variables["c"]}


@pytest.mark.asyncio
async def test_cursors_page_through(gateway: Gateway, fake: FakeUpstream) -> None:
    author = fake.add_stakeholder()
    for n in range(5):
        fake.add_idea(author, title=f"Idea {n}")
    query = """query($after: String) { ideas(first: 2, after: $after) {
      edges { cursor node { title } } pageInfo { hasNextPage endCursor } } }"""
    titles: list[str] = []
    after = None
    for _ in range(5):
        result = await gateway.execute(query, {"after": after})
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
    # resuming from an edge inside a page (a gateway cursor) continues right after it
    first = await gateway.execute(query, {"after": None})
    assert first.data is not None
    inner_cursor = first.data["ideas"]["edges"][0]["cursor"]
    resumed = await gateway.execute(query, {"after": inner_cursor})
    assert resumed.data is not None
    assert [e["node"]["title"] for e in resumed.data["ideas"]["edges"]] == ["Idea 1", "Idea 2"]


@pytest.mark.asyncio
async def test_total_count_is_only_computed_when_asked_for(gateway: Gateway, fake: FakeUpstream) -> None:
    seed(fake, 3)
    without = await gateway.execute("{ ideas(first: 2) { edges { node { title } } } }")
    with_total = await gateway.execute(
        "{ ideas(first: 2) { ...Counted } } fragment Counted on IdeaConnection { totalCount }"
    )
    assert without.errors is None and with_total.errors is None
    assert with_total.data == {"ideas": {"totalCount": 3}}
    seen = [r.url.params.get("with_total") for r in fake.requests if r.url.path == "/ideas" and r.method == "GET"]
    assert seen == ["false", None]
