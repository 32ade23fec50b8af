"""Live updates over graphql-transport-ws: one client votes and comments over HTTP, another
receives ideaChanged (with the new score) and commentAdded. The waits are liveness bounds (a
few seconds), not performance claims."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from devstack.waiting import eventually_blocking
from tests.e2e.support import (
    GRAPHQL_TRANSPORT_WS,
    SET_STATUS,
    Crowd,
    LiveClient,
    Session,
    comment,
    propose,
    subscription_client,
    vote,
    ws_url,
)

pytestmark = pytest.mark.e2e

IDEA_CHANGED = "subscription($id: ID!) { ideaChanged(id: $id) { id score voters status commentCount } }"
COMMENT_ADDED = """
subscription($id: ID!) {
  commentAdded(ideaId: $id) { id body official hidden author { id } idea { id } }
}"""
LIVENESS = 5.0  # seconds: what must arrive arrives by then


def next_data(ws: LiveClient, op: str, field: str) -> dict[str, Any]:
    message = ws.next(op, LIVENESS)
    assert message["type"] == "next", message
    assert not message["payload"].get("errors"), message
    data: dict[str, Any] = message["payload"]["data"][field]
    return data


def emission(
    ws: LiveClient, op: str, field: str, check: Callable[[dict[str, Any]], bool]
) -> Callable[[], dict[str, Any] | None]:
    """For `eventually_blocking`: the operation's next emission if it passes `check`. ideaChanged
    emits on every change, and events reach the projections in any order, so there may be
    intermediate states on the way; each must still come within the liveness bound and be data
    (anything else fails at once)."""

    def next_passing() -> dict[str, Any] | None:
        try:
            data = next_data(ws, op, field)
        except AssertionError as exc:
            pytest.fail(str(exc))
        return data if check(data) else None

    return next_passing


def test_one_client_writes_the_other_sees_it_live(url: str, crowd: Crowd, product_team: Session) -> None:
    author, watcher, voter = crowd("PARTNER"), crowd("CUSTOMER", 3), crowd("EMPLOYEE", 3)
    idea = propose(author)
    vote(voter, idea["id"], 1)  # the votes service knows the idea: later votes go straight through

    with subscription_client(url, watcher.token) as ws:
        ws.subscribe("changes", IDEA_CHANGED, id=idea["id"])
        ws.subscribe("comments", COMMENT_ADDED, id=idea["id"])
        ws.settle(idea["id"])

        vote(voter, idea["id"], 3)  # (1 before: its update may come first)
        seen = eventually_blocking(emission(ws, "changes", "ideaChanged", lambda i: i["score"] == 3), interval=0)
        assert (seen["id"], seen["voters"]) == (idea["id"], 1)

        added = comment(voter, idea["id"], "seen live?")
        vote(author, idea["id"], 2)
        assert next_data(ws, "comments", "commentAdded") == {
            "id": added["id"],
            "body": "seen live?",
            "official": False,
            "hidden": False,
            "author": {"id": voter.id},
            "idea": {"id": idea["id"]},
        }
        both = emission(ws, "changes", "ideaChanged", lambda i: (i["score"], i["commentCount"]) == (5, 1))
        seen = eventually_blocking(both, interval=0)
        assert seen["voters"] == 2

        official = comment(product_team, idea["id"], "official answer")
        got = next_data(ws, "comments", "commentAdded")
        assert (got["id"], got["official"]) == (official["id"], True)

        product_team.ok(SET_STATUS, id=idea["id"], status="UNDER_REVIEW")
        seen = eventually_blocking(
            emission(ws, "changes", "ideaChanged", lambda i: i["status"] == "UNDER_REVIEW"), interval=0
        )
        assert seen["score"] == 5

        # completing one operation stops it; the other goes on
        ws.complete("comments")
        # Markers for "it would have come by now": a second commentAdded on the idea, which the
        # same trigger feeds, and the idea's change, which comes after the ideas service consumed
        # the comment's event.
        ws.subscribe("marker", COMMENT_ADDED, id=idea["id"])
        ws.settle(idea["id"])
        late = comment(voter, idea["id"], "after complete")
        assert next_data(ws, "marker", "commentAdded")["id"] == late["id"]
        eventually_blocking(emission(ws, "changes", "ideaChanged", lambda i: i["commentCount"] == 3), interval=0)
        assert ws.quiet("comments")


def test_anonymous_subscriber_of_a_public_idea(url: str, crowd: Crowd) -> None:
    author, voter = crowd("SUPPLIER"), crowd("PARTNER", 3)
    idea = propose(author)
    vote(voter, idea["id"], 1)
    with subscription_client(url, None) as ws:
        ws.subscribe("c", COMMENT_ADDED, id=idea["id"])
        ws.subscribe("i", IDEA_CHANGED, id=idea["id"])
        ws.settle(idea["id"])
        added = comment(voter, idea["id"], "hello anonymous")
        assert next_data(ws, "c", "commentAdded")["id"] == added["id"]
        assert next_data(ws, "i", "ideaChanged")["id"] == idea["id"]


def closed_with(init: dict[str, Any] | None, first: dict[str, Any], url: str) -> int | None:
    with connect(ws_url(url), subprotocols=[GRAPHQL_TRANSPORT_WS], open_timeout=10) as ws:
        if init is not None:
            ws.send(json.dumps(init))
        ws.send(json.dumps(first))
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                ws.recv(timeout=LIVENESS)
        return closed.value.rcvd.code if closed.value.rcvd is not None else None


def test_subscription_handshake_refusals(url: str) -> None:
    subscribe = {"id": "1", "type": "subscribe", "payload": {"query": "subscription { __typename }"}}
    # a bad token in connection_init: the connection is refused (4403 Forbidden)
    bad = {"type": "connection_init", "payload": {"Authorization": "Bearer not.a.token"}}
    assert closed_with(None, bad, url) == 4403
    # an operation before connection_init: 4401 Unauthorized
    assert closed_with(None, subscribe, url) == 4401
