"""The read floor executes the bench's read query over a generated answer (pure: no servers)."""

from __future__ import annotations

from bench.floor import graphql_execution_floor
from bench.reads import READ


def test_the_read_floor_resolves_every_field_of_a_full_page() -> None:
    ms, fields = graphql_execution_floor(READ, {"sort": "TOP"}, rounds=3)
    # ideas + edges, then per edge: node + id title score voters commentCount + tally (the list
    # and 4 x kind/voters/weight) + author/displayName + myVote/weight = 23, for 20 edges
    assert fields == 2 + 20 * 23
    assert ms > 0
