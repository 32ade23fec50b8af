"""The platform as a user meets it: started by `python -m devstack run`, used over GraphQL."""

from __future__ import annotations

import uuid

import httpx
import psutil
import pytest

from devstack.waiting import eventually_blocking
from tests.e2e.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, GraphQL, Stack
from tests.e2e.support import MUTATION_RETRY_INTERVAL

pytestmark = pytest.mark.e2e

REGISTER = """
mutation($input: RegisterInput!) {
  register(input: $input) { token stakeholder { id displayName kind role } }
}"""
PROPOSE = """
mutation($input: ProposeIdeaInput!) {
  proposeIdea(input: $input) { id title status score voters author { displayName } }
}"""
CAST = "mutation($id: ID!, $w: Int) { castVote(ideaId: $id, weight: $w) { weight voter { id } idea { id } } }"
IDEA = "query($id: ID!) { idea(id: $id) { id title score voters tally { kind voters weight } } }"


def running(pid: int) -> bool:
    """Alive and not a zombie (a daemon's exit is reaped by init, maybe not at once)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def register(api: GraphQL, kind: str = "CUSTOMER") -> tuple[str, dict]:  # type: ignore[type-arg]
    data = api.ok(
        REGISTER,
        input={
            "email": f"e2e-{uuid.uuid4().hex[:10]}@example.org",
            "password": "a good long password",
            "displayName": "E2E",
            "kind": kind,
        },
    )
    return data["register"]["token"], data["register"]["stakeholder"]


def test_typename_answers(stack: Stack) -> None:
    assert GraphQL(stack.graphql_url).ok("{ __typename }") == {"__typename": "Query"}


def test_one_idea_travels_the_whole_architecture(stack: Stack) -> None:
    anonymous = GraphQL(stack.graphql_url)
    token, me = register(anonymous, "PARTNER")
    api = GraphQL(stack.graphql_url, token)
    idea = api.ok(PROPOSE, input={"title": "Dark mode", "body": "Please add a dark theme.", "tags": ["ui"]})
    idea = idea["proposeIdea"]
    assert idea["status"] == "OPEN" and idea["score"] == 0 and idea["voters"] == 0
    assert idea["author"]["displayName"] == "E2E"

    # The votes service learns about the idea from ideas.v1.idea.proposed: wait for it.
    vote = eventually_blocking(
        lambda: (api(CAST, id=idea["id"], w=3).get("data") or {}).get("castVote"),
        interval=MUTATION_RETRY_INTERVAL,
        what="the vote accepted",
    )
    assert vote["weight"] == 3 and vote["voter"]["id"] == me["id"]

    voter2, _ = register(anonymous, "CUSTOMER")
    eventually_blocking(
        lambda: (GraphQL(stack.graphql_url, voter2)(CAST, id=idea["id"], w=1).get("data") or {}).get("castVote"),
        interval=MUTATION_RETRY_INTERVAL,
        what="the second vote accepted",
    )

    # score and voters are projections in the ideas service, fed by votes.v1.vote.cast events.
    seen = eventually_blocking(
        lambda: (lambda i: i if i and i["score"] == 4 and i["voters"] == 2 else None)(
            anonymous.ok(IDEA, id=idea["id"])["idea"]
        ),
        what="both votes projected",
    )
    assert seen["tally"] == [
        {"kind": "CUSTOMER", "voters": 1, "weight": 1},
        {"kind": "PARTNER", "voters": 1, "weight": 3},
    ]


def test_bad_input_gets_a_coded_error_never_a_500(stack: Stack) -> None:
    anonymous = GraphQL(stack.graphql_url)
    token, _ = register(anonymous)
    api = GraphQL(stack.graphql_url, token)
    assert api.error_codes(PROPOSE, input={"title": "   ", "body": "x"}) == ["BAD_USER_INPUT"]
    unknown = "SWRlYTo" + "AAAA"  # not a valid idea id
    assert api.error_codes(CAST, id=unknown, w=1) in (["NOT_FOUND"], ["BAD_USER_INPUT"])
    assert GraphQL(stack.graphql_url, "not-a-token").error_codes("{ me { id } }") == ["UNAUTHENTICATED"]
    assert anonymous.error_codes(PROPOSE, input={"title": "t", "body": "b"}) == ["UNAUTHENTICATED"]
    response = httpx.post(stack.graphql_url, content=b"{not json", headers={"content-type": "application/json"})
    assert 400 <= response.status_code < 500


def test_bootstrap_admin_can_log_in(stack: Stack) -> None:
    data = GraphQL(stack.graphql_url).ok(
        "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { stakeholder { role kind } } }",
        e=ADMIN_EMAIL,
        p=ADMIN_PASSWORD,
    )
    assert data["login"]["stakeholder"] == {"role": "ADMIN", "kind": "EMPLOYEE"}


def test_restart_keeps_the_data_and_stop_leaves_no_process(stack: Stack) -> None:
    anonymous = GraphQL(stack.graphql_url)
    token, _ = register(anonymous)
    idea = GraphQL(stack.graphql_url, token).ok(PROPOSE, input={"title": "Survives restarts", "body": "b"})
    idea_id = idea["proposeIdea"]["id"]

    processes = stack.descendants()
    postmaster = stack.postmaster_pid()
    assert processes and postmaster
    assert stack.stop() in (0, 130)
    alive = [p for p in processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert alive == [], f"left behind: {alive}"
    assert not running(postmaster), "PostgreSQL must be stopped too"

    stack.start()
    assert anonymous.ok(IDEA, id=idea_id)["idea"]["title"] == "Survives restarts"
