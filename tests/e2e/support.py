"""Helpers of the acceptance suite: sessions (a GraphQL client that knows who it is), unique
data per test, and waits for what the services learn from events (never a timing assertion).

Everything goes through the public GraphQL API of the running platform; the only other thing
read is the services' /metrics (to count upstream calls)."""

from __future__ import annotations

import json
import re
import uuid
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Subprotocol

from devstack.stack import GraphQL
from devstack.waiting import eventually_blocking

PASSWORD = "a good long password"
# Waits that repeat a mutation do it at most ten times a second: the gateway's per-stakeholder
# mutation budget refills at that rate.
MUTATION_RETRY_INTERVAL = 0.1
GRAPHQL_TRANSPORT_WS = Subprotocol("graphql-transport-ws")

STAKEHOLDER_FIELDS = "id displayName kind organization role expertise createdAt"
IDEA_FIELDS = (
    "id title body tags status statusNote visibleTo voters score commentCount createdAt updatedAt "
    "tally { kind voters weight } author { id displayName kind }"
)
REGISTER = f"""
mutation($input: RegisterInput!) {{
  register(input: $input) {{ token stakeholder {{ {STAKEHOLDER_FIELDS} }} }}
}}"""
LOGIN = f"""
mutation($email: String!, $password: String!) {{
  login(email: $email, password: $password) {{ token stakeholder {{ {STAKEHOLDER_FIELDS} }} }}
}}"""
GRANT = "mutation($id: ID!, $role: Role!) { grantRole(stakeholderId: $id, role: $role) { id role } }"
PROPOSE = f"mutation($input: ProposeIdeaInput!) {{ proposeIdea(input: $input) {{ {IDEA_FIELDS} }} }}"
IDEA = f"query($id: ID!) {{ idea(id: $id) {{ {IDEA_FIELDS} mergedInto {{ id }} myVote {{ weight }} }} }}"
CAST = "mutation($id: ID!, $w: Int) { castVote(ideaId: $id, weight: $w) { weight castAt voter { id } idea { id } } }"
WITHDRAW = "mutation($id: ID!) { withdrawVote(ideaId: $id) }"
COMMENT = """
mutation($id: ID!, $body: String!, $parent: ID) {
  addComment(ideaId: $id, body: $body, parentId: $parent) {
    id body official hidden createdAt author { id } idea { id } parent { id }
  }
}"""
SET_STATUS = f"""
mutation($id: ID!, $status: IdeaStatus!, $note: String) {{
  setIdeaStatus(id: $id, status: $status, note: $note) {{ {IDEA_FIELDS} }}
}}"""
MERGE = f"""
mutation($source: ID!, $target: ID!) {{
  mergeIdeas(sourceId: $source, targetId: $target) {{ {IDEA_FIELDS} }}
}}"""


def unique(prefix: str = "x") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def unique_tag() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


def unique_word() -> str:
    """A word no other idea contains (letters only, so full-text search keeps it whole)."""
    return "zq" + "".join("abcdefghijklmnop"[int(c, 16)] for c in uuid.uuid4().hex[:12])


@dataclass
class Session:
    """A caller of the API: a GraphQL client with the token, and who it is."""

    api: GraphQL
    id: str
    kind: str
    role: str
    email: str
    password: str
    display_name: str

    @property
    def token(self) -> str:
        assert self.api.token is not None
        return self.api.token

    def ok(self, query: str, **variables: Any) -> dict[str, Any]:
        return self.api.ok(query, **variables)

    def error_codes(self, query: str, **variables: Any) -> list[str]:
        return self.api.error_codes(query, **variables)

    def __call__(self, query: str, **variables: Any) -> dict[str, Any]:
        return self.api(query, **variables)


def register(
    url: str,
    kind: str = "CUSTOMER",
    *,
    expertise: list[str] | None = None,
    organization: str | None = None,
    display_name: str | None = None,
) -> Session:
    email = f"{unique('e2e')}@example.org"
    name = display_name or unique("Member")
    data: dict[str, Any] = {"email": email, "password": PASSWORD, "displayName": name, "kind": kind}
    if expertise is not None:
        data["expertise"] = expertise
    if organization is not None:
        data["organization"] = organization
    answer = GraphQL(url).ok(REGISTER, input=data)["register"]
    who = answer["stakeholder"]
    return Session(GraphQL(url, answer["token"]), who["id"], who["kind"], who["role"], email, PASSWORD, name)


def login(url: str, email: str, password: str) -> Session:
    answer = GraphQL(url).ok(LOGIN, email=email, password=password)["login"]
    who = answer["stakeholder"]
    return Session(
        GraphQL(url, answer["token"]), who["id"], who["kind"], who["role"], email, password, who["displayName"]
    )


def with_role(url: str, admin: Session, role: str, kind: str = "EMPLOYEE") -> Session:
    """A new stakeholder granted `role` by the ADMIN, logged in again (the role is in the token)."""
    member = register(url, kind)
    granted = admin.ok(GRANT, id=member.id, role=role)["grantRole"]
    assert granted == {"id": member.id, "role": role}
    again = login(url, member.email, member.password)
    assert again.role == role
    return again


class Crowd:
    """Members whose identity does not matter to a test (voters, commenters, readers): registered
    once for the whole session on first use (argon2 makes each registration cost ~0.3 s), and
    shared by the tests; every test still makes its own ideas, so shared members never mix
    tests' data. `crowd("SUPPLIER", 2)` is the third SUPPLIER."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._members: dict[tuple[str, int], Session] = {}

    def __call__(self, kind: str = "CUSTOMER", n: int = 0) -> Session:
        key = (kind, n)
        if key not in self._members:
            self._members[key] = register(self.url, kind, display_name=f"{kind.title()} {n}")
        return self._members[key]


def anonymous(url: str) -> GraphQL:
    return GraphQL(url)


# --- data ----------------------------------------------------------------------------------------
def propose(
    who: Session,
    *,
    title: str | None = None,
    body: str = "An idea written by the acceptance suite.",
    tags: list[str] | None = None,
    visible_to: list[str] | None = None,
) -> dict[str, Any]:
    data: dict[str, Any] = {"title": title or unique("Idea"), "body": body}
    if tags is not None:
        data["tags"] = tags
    if visible_to is not None:
        data["visibleTo"] = visible_to
    idea: dict[str, Any] = who.ok(PROPOSE, input=data)["proposeIdea"]
    return idea


def when_known(call: Callable[[], dict[str, Any]], field: str) -> Any:
    """Run a mutation until the service it goes to has learnt about the idea from its event:
    NOT_FOUND is retried (bounded), any other error fails at once."""

    def attempt() -> Any:
        body = call()
        errors = body.get("errors")
        if not errors:
            return body["data"][field] if body["data"][field] is not None else True
        if [e.get("extensions", {}).get("code") for e in errors] != ["NOT_FOUND"]:
            pytest.fail(f"refused for another reason than not knowing the idea yet: {body}")
        return None

    return eventually_blocking(attempt, interval=MUTATION_RETRY_INTERVAL, what=f"{field} accepted")


def vote(who: Session, idea_id: str, weight: int = 1) -> dict[str, Any]:
    result: dict[str, Any] = when_known(lambda: who(CAST, id=idea_id, w=weight), "castVote")
    assert result["weight"] == weight
    return result


def comment(who: Session, idea_id: str, body: str | None = None, parent: str | None = None) -> dict[str, Any]:
    text = body or unique("A comment")
    result: dict[str, Any] = when_known(lambda: who(COMMENT, id=idea_id, body=text, parent=parent), "addComment")
    return result


def idea_as(reader: Session | GraphQL, idea_id: str) -> dict[str, Any] | None:
    data: dict[str, Any] | None = reader.ok(IDEA, id=idea_id)["idea"]
    return data


def wait_idea(reader: Session | GraphQL, idea_id: str, check: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """The idea once `check` holds (projections are fed by events)."""
    found: dict[str, Any] = eventually_blocking(
        lambda: (lambda i: i if i is not None and check(i) else None)(idea_as(reader, idea_id)),
        what=f"idea {idea_id} as expected",
    )
    return found


def wait_projections(
    reader: Session | GraphQL, idea_id: str, *, score: int, voters: int, comments: int = 0
) -> dict[str, Any]:
    return wait_idea(
        reader, idea_id, lambda i: (i["score"], i["voters"], i["commentCount"]) == (score, voters, comments)
    )


def codes(body: dict[str, Any]) -> list[str | None]:
    return [e.get("extensions", {}).get("code") for e in body.get("errors") or []]


# --- service metrics --------------------------------------------------------------------------------
SERVICES = ("stakeholders", "ideas", "votes", "comments")
_SAMPLE = re.compile(r"^http_requests_total\{(?P<labels>[^}]*)\} (?P<value>[0-9.e+]+)$")
_LABEL = re.compile(r'(\w+)="([^"]*)"')
NOT_UPSTREAM_CALLS = frozenset({"/metrics", "/healthz", "/readyz", "/.well-known/jwks.json"})


def service_calls(env: dict[str, str]) -> dict[str, float]:
    """http_requests_total of each service summed over its routes (ops routes left out)."""
    totals: dict[str, float] = {}
    for name in SERVICES:
        port = env[f"{name.upper()}_PORT"]
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        total = 0.0
        for line in text.splitlines():
            match = _SAMPLE.match(line)
            if match is None:
                continue
            labels = dict(_LABEL.findall(match["labels"]))
            if labels.get("route") not in NOT_UPSTREAM_CALLS:
                total += float(match["value"])
        totals[name] = total
    return totals


# --- graphql-transport-ws ---------------------------------------------------------------------------
def ws_url(graphql_url: str) -> str:
    return "ws" + graphql_url.removeprefix("http")


class LiveClient:
    """One graphql-transport-ws connection; messages are kept per operation id, so waiting for
    one operation never loses another's."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self._pending: dict[str, deque[dict[str, Any]]] = defaultdict(deque)

    def send(self, message: dict[str, Any]) -> None:
        self.ws.send(json.dumps(message))

    def subscribe(self, op_id: str, query: str, **variables: Any) -> None:
        self.send({"id": op_id, "type": "subscribe", "payload": {"query": query, "variables": variables}})

    def complete(self, op_id: str) -> None:
        self.send({"id": op_id, "type": "complete"})

    def _receive(self, wait: float) -> bool:
        """Take one message off the socket if one arrives within `wait` seconds (0: only one
        already received); pings are answered. False when there was none."""
        try:
            message = json.loads(self.ws.recv(timeout=wait))
        except TimeoutError:
            return False
        if message.get("type") == "ping":
            self.send({"type": "pong"})
        elif "id" in message:
            self._pending[message["id"]].append(message)
        return True

    def next(self, op_id: str, timeout: float = 5.0) -> dict[str, Any]:
        """The next message of the operation; fails when none arrives within `timeout` seconds
        (a liveness bound)."""
        pending = self._pending[op_id]

        def arrived() -> bool:
            if not pending:
                self._receive(0.1)
            return bool(pending)

        eventually_blocking(arrived, timeout=timeout, interval=0, what=f"a message for {op_id}")
        return pending.popleft()

    def settle(self, idea_id: str) -> None:
        """A query over the same socket that reads the idea upstream: once it is answered, the
        subscriptions sent before it are listening (they register before their first read)."""
        self.subscribe("settle", "query($id: ID!) { idea(id: $id) { id } }", id=idea_id)
        assert self.next("settle")["type"] == "next"
        assert self.next("settle")["type"] == "complete"

    def quiet(self, op_id: str) -> bool:
        """True when nothing has arrived for the operation. It reads what the socket has already
        received and does not wait: call it once a later message (a marker) has arrived."""
        while self._receive(0):
            pass
        if self._pending[op_id]:
            raise AssertionError(f"unexpected message for {op_id}: {self._pending[op_id][0]}")
        return True


@contextmanager
def subscription_client(graphql_url: str, token: str | None) -> Iterator[LiveClient]:
    """A graphql-transport-ws connection, initialised and acknowledged."""
    with connect(ws_url(graphql_url), subprotocols=[GRAPHQL_TRANSPORT_WS], open_timeout=10) as ws:
        payload = {"Authorization": f"Bearer {token}"} if token else {}
        ws.send(json.dumps({"type": "connection_init", "payload": payload}))
        ack = json.loads(ws.recv(timeout=10))
        assert ack["type"] == "connection_ack", ack
        yield LiveClient(ws)
