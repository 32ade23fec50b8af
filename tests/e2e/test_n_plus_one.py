"""N+1 against the real stack: a page of ideas with author, myVote and the first comments costs
the same number of upstream calls for 10 ideas as for 50, counted on the services' own /metrics
(http_requests_total per service, summed over routes)."""

from __future__ import annotations

from typing import Any

import pytest

from devstack.waiting import eventually_blocking
from tests.e2e.conftest import Stack
from tests.e2e.support import Crowd, Session, comment, propose, service_calls, unique_tag, vote, wait_projections

pytestmark = pytest.mark.e2e

PAGE = """
query($first: Int!, $tag: String!) {
  ideas(first: $first, tag: $tag, sort: NEWEST) {
    totalCount
    edges {
      node {
        id title score
        author { id displayName }
        myVote { weight voter { id } }
        comments(first: 3) { totalCount edges { node { id body author { id displayName } } } }
      }
    }
  }
}"""


def calls_for(stack: Stack, reader: Session, **variables: Any) -> tuple[dict[str, float], dict[str, Any]]:
    """Upstream calls per service made while answering one query (counters settled after)."""
    before = service_calls(stack.env)
    data = reader.ok(PAGE, **variables)

    def settled() -> dict[str, float] | None:
        first, second = service_calls(stack.env), service_calls(stack.env)
        return first if first == second else None

    after: dict[str, float] = eventually_blocking(settled, what="the request counters settled")
    return {name: after[name] - before[name] for name in after}, data


def test_a_page_of_ideas_costs_constant_upstream_calls(stack: Stack, crowd: Crowd) -> None:
    tag = unique_tag()
    authors = [crowd("EMPLOYEE", n) for n in range(3)]
    talker, reader = crowd("CUSTOMER", 4), crowd("PARTNER", 4)
    ideas = [propose(authors[n % 3], title=f"page idea {n}", tags=[tag]) for n in range(50)]
    newest = list(reversed(ideas))
    # comments (by someone who wrote no idea) and the reader's votes on the newest ones: both
    # pages have some of each
    for idea in newest[:4]:
        comment(talker, idea["id"], "first!")
        comment(reader, idea["id"], "second")
    for idea in newest[:3]:
        vote(reader, idea["id"], 2)
    wait_projections(reader, newest[0]["id"], score=2, voters=1, comments=2)

    costs = {}
    for size in (10, 50):
        cost, data = calls_for(stack, reader, first=size, tag=tag)
        edges = data["ideas"]["edges"]
        assert len(edges) == size and data["ideas"]["totalCount"] == 50
        top = edges[0]["node"]
        assert top["id"] == newest[0]["id"] and top["myVote"]["weight"] == 2
        assert top["comments"]["totalCount"] == 2
        assert [c["node"]["author"]["id"] for c in top["comments"]["edges"]] == [talker.id, reader.id]
        assert edges[-1]["node"]["myVote"] is None and edges[-1]["node"]["comments"]["edges"] == []
        assert {e["node"]["author"]["id"] for e in edges} == {a.id for a in authors}
        costs[size] = cost

    # The constant is small and the same for 10 as for 50: one list, one vote lookup, one comment
    # batch, and at most one stakeholder batch per relation (idea authors, comment authors,
    # voters). Relations whose upstream answers land in the same event-loop turn share one
    # stakeholder batch, and the gateway keeps stakeholders it has read (gateway/stakeholder_cache),
    # so that count is 0-3 depending on arrival order and on what is cached, never more per idea.
    for size in (10, 50):
        assert costs[size]["ideas"] == 1 and costs[size]["votes"] == 1 and costs[size]["comments"] == 1, costs
        assert 0 <= costs[size]["stakeholders"] <= 3, costs
