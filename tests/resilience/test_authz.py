"""Authorisation through the gateway, generated from ONE table (`TABLE` below): every query and
mutation x every role (anonymous, MEMBER, MODERATOR, PRODUCT_TEAM, ADMIN, the idea's author, a
read-only API key) x every stakeholder kind x a public and a SUPPLIER-only idea.

OWASP API1 (BOLA): objects the caller may not see are NOT_FOUND / null, never FORBIDDEN; others'
ideas cannot be refined, others' keys not revoked, nobody's vote but one's own is shown.
OWASP API3 (property level): no e-mail, password hash or key secret in any answer (but the new
key's own secret once); hidden comment bodies read as "" for everyone but moderators.
OWASP API5 (function level): triage, hiding and role grants only for the roles that have them.
Then credentials: tampered, expired, `alg: none`, HS256 signed with the public key, a foreign
key, wrong audience, revoked API keys... all UNAUTHENTICATED (gateway and services)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from devstack.cluster import Cluster
from devstack.waiting import eventually
from tests.resilience.conftest import running_cluster
from tests.resilience.report import RESULTS
from tests.resilience.support import (
    KINDS,
    PASSWORD,
    Api,
    Outcome,
    Person,
    admin,
    pk_of,
    propose,
    query,
    register,
    wait_known,
    with_role,
)

pytestmark = pytest.mark.slow

ROLES = ("MEMBER", "MODERATOR", "PRODUCT_TEAM", "ADMIN")
SECRET_BODY = "hidden-secret-body-7d1e"
OK, NULL = "ok", "null"


# --- who is calling, on what ----------------------------------------------------------------------
@dataclass(frozen=True)
class Cell:
    role: str  # anonymous | author | api_read | MEMBER | MODERATOR | PRODUCT_TEAM | ADMIN
    kind: str | None
    vis: str  # public | supplier | - (the operation is about no idea)

    @property
    def writer(self) -> bool:
        return self.role not in ("anonymous", "api_read")

    @property
    def staff(self) -> bool:
        return self.role in ("PRODUCT_TEAM", "ADMIN")

    @property
    def moderator(self) -> bool:
        return self.role in ("MODERATOR", "PRODUCT_TEAM", "ADMIN")

    @property
    def sees(self) -> bool:
        """The contract: visibleTo empty, or the caller's kind in it, or author / staff."""
        if self.vis in ("public", "-"):
            return True
        return self.role != "anonymous" and (self.kind == "SUPPLIER" or self.role == "author" or self.staff)


def on_idea(allowed: Callable[[Cell], bool]) -> Callable[[Cell], str]:
    """A mutation on an idea (or on something of it): who may call it, in the contract's order."""

    def rule(c: Cell) -> str:
        if c.role == "anonymous":
            return "UNAUTHENTICATED"
        if c.role == "api_read":
            return "FORBIDDEN"
        if not c.sees:
            return "NOT_FOUND"
        return OK if allowed(c) else "FORBIDDEN"

    return rule


def writer(allowed: Callable[[Cell], bool] = lambda c: True, denied: str = "FORBIDDEN") -> Callable[[Cell], str]:
    def rule(c: Cell) -> str:
        if c.role == "anonymous":
            return "UNAUTHENTICATED"
        if c.role == "api_read":
            return "FORBIDDEN"
        return OK if allowed(c) else denied

    return rule


def visible(c: Cell) -> str:
    return OK if c.sees else NULL


@dataclass
class World:
    cluster: Cluster
    api: Api
    people: dict[tuple[str, str | None], Person | None]  # (role, kind) -> who (None: anonymous)
    author: Person
    boss: Person
    ideas: dict[str, str]  # vis -> idea global id
    titles: dict[str, str]
    comments: dict[str, str]  # vis -> a comment (flagged, hidden by moderators in the matrix)
    hidden: dict[str, str]  # vis -> a comment hidden before the matrix runs
    fresh: dict[tuple[str, Cell], str]  # (op, cell) -> an idea of its own (status, merge)
    merge_target: str
    victim_key: str  # an API key of the author's, for revokeApiKey
    dummy: Person  # a stakeholder whose role is granted (to MEMBER) and who logs in
    tag: str
    emails: list[str] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)  # every answer's text, for the API3 scan


# --- THE table: one row per operation -----------------------------------------------------------------
@dataclass(frozen=True)
class Op:
    name: str
    document: str
    variables: Callable[[World, Cell], dict[str, Any]]
    expect: Callable[[Cell], str]
    per_idea: bool = True  # expanded over the two ideas (else once per caller)
    mutation: bool = False
    check: Callable[[World, Cell, Any], str | None] | None = None  # extra check of an allowed answer


def _idea(w: World, c: Cell) -> dict[str, Any]:
    return {"i": w.ideas[c.vis]}


def sees_supplier(c: Cell) -> bool:
    return Cell(c.role, c.kind, "supplier").sees


def _listed(w: World, c: Cell, data: Any) -> str | None:
    ids = {e["node"]["id"] for e in data["ideas"]["edges"]}
    want = {w.ideas["public"]} | ({w.ideas["supplier"]} if sees_supplier(c) else set())
    problem = None if ids == want else f"listed {len(ids)} ideas, expected {len(want)}"
    if data["ideas"]["totalCount"] != len(want):
        problem = f"totalCount {data['ideas']['totalCount']} != {len(want)}"
    return problem


def _similar(w: World, c: Cell, data: Any) -> str | None:
    ids = {i["id"] for i in data["similarIdeas"]}
    leaked = w.ideas["supplier"] in ids and not sees_supplier(c)
    return "the SUPPLIER-only idea leaked into similarIdeas" if leaked else None


def _hidden_body(w: World, c: Cell, data: Any) -> str | None:
    node = data.get("node") or {}
    body = node.get("body")
    want = SECRET_BODY if c.moderator else ""
    return None if body == want else f"hidden comment body {body!r} for {c.role}"


def _thread(w: World, c: Cell, data: Any) -> str | None:
    for edge in data["idea"]["comments"]["edges"]:
        node = edge["node"]
        if node["hidden"] and node["body"] != (SECRET_BODY if c.moderator else ""):
            return f"hidden body {node['body']!r} shown to {c.role}"
    return None


def _me(w: World, c: Cell, data: Any) -> str | None:
    who = w.people[(c.role, c.kind)]
    expected = who.id if who is not None else None
    got = (data["me"] or {}).get("id")
    return None if got == expected else f"me is {got}, expected {expected}"


def _my_vote(w: World, c: Cell, data: Any) -> str | None:
    vote = data["idea"]["myVote"]
    if c.role == "author":
        return None if vote and vote["voter"]["id"] == w.author.id else f"author's own vote missing: {vote}"
    return None if vote is None else f"someone else's vote shown to {c.role}: {vote}"


IDEA_FIELDS = "id title body visibleTo status author { id displayName kind role organization }"
TABLE: list[Op] = [
    # queries ---------------------------------------------------------------------------------------
    Op("idea", f"query($i: ID!) {{ idea(id: $i) {{ {IDEA_FIELDS} }} }}", _idea, visible),
    Op("node(Idea)", "query($i: ID!) { node(id: $i) { id ... on Idea { title } } }", _idea, visible),
    Op(
        "node(Comment) hidden",
        "query($c: ID!) { node(id: $c) { id ... on Comment { body hidden author { id } } } }",
        lambda w, c: {"c": w.hidden[c.vis]},
        visible,
        check=_hidden_body,
    ),
    Op(
        "idea.comments",
        "query($i: ID!) { idea(id: $i) { comments(first: 50) { totalCount edges { node { id body hidden "
        "author { id displayName } } } } } }",
        _idea,
        visible,
        check=_thread,
    ),
    Op(
        "idea.revisions",
        "query($i: ID!) { idea(id: $i) { revisions { version title editor { id displayName } } } }",
        _idea,
        visible,
    ),
    Op(
        "idea.myVote",
        "query($i: ID!) { idea(id: $i) { myVote { weight voter { id } } } }",
        _idea,
        visible,
        check=_my_vote,
    ),
    Op(
        "ideas(tag)",
        "query($t: String!) { ideas(tag: $t, first: 50) { totalCount edges { node { id } } } }",
        lambda w, c: {"t": w.tag},
        lambda c: OK,
        per_idea=False,
        check=_listed,
    ),
    Op(
        "similarIdeas",
        "query($t: String!) { similarIdeas(text: $t, first: 20) { id } }",
        lambda w, c: {"t": w.titles["supplier"]},
        lambda c: OK,
        per_idea=False,
        check=_similar,
    ),
    Op(
        "node(Stakeholder)",
        "query($s: ID!) { node(id: $s) { id ... on Stakeholder { displayName kind role organization expertise } } }",
        lambda w, c: {"s": w.author.id},
        lambda c: OK,
        per_idea=False,
    ),
    Op(
        "me",
        "{ me { id kind role } }",
        lambda w, c: {},
        lambda c: NULL if c.role == "anonymous" else OK,
        per_idea=False,
        check=_me,
    ),
    Op(
        "experts",
        "query($t: String!) { experts(tag: $t) { id displayName } }",
        lambda w, c: {"t": w.tag},
        lambda c: OK,
        per_idea=False,
    ),
    Op(
        "apiKeys",
        "{ apiKeys { id label scope } }",
        lambda w, c: {},
        lambda c: "UNAUTHENTICATED" if c.role == "anonymous" else OK,
        per_idea=False,
    ),
    # mutations ---------------------------------------------------------------------------------------
    Op(
        "register",
        "mutation($in: RegisterInput!) { register(input: $in) { token stakeholder { id } } }",
        lambda w, c: {
            "in": {
                "email": f"authz-{uuid.uuid4().hex[:10]}@example.org",
                "password": PASSWORD,
                "displayName": "Registered",
                "kind": "CUSTOMER",
            }
        },
        lambda c: OK,
        per_idea=False,
        mutation=True,
    ),
    Op(
        "login",
        "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { stakeholder { id } } }",
        lambda w, c: {"e": w.dummy.email, "p": PASSWORD},
        lambda c: OK,
        per_idea=False,
        mutation=True,
    ),
    Op(
        "proposeIdea",
        "mutation($in: ProposeIdeaInput!) { proposeIdea(input: $in) { id } }",
        lambda w, c: {"in": {"title": f"Proposed by {c.role}", "body": "b", "tags": ["authz-proposed"]}},
        writer(),
        per_idea=False,
        mutation=True,
    ),
    Op(
        "refineIdea",
        'mutation($i: ID!) { refineIdea(id: $i, input: { body: "Refined body" }) { id } }',
        _idea,
        on_idea(lambda c: c.role == "author" or c.staff),
        mutation=True,
    ),
    Op(
        "castVote",
        "mutation($i: ID!) { castVote(ideaId: $i, weight: 2) { weight } }",
        _idea,
        on_idea(lambda c: True),
        mutation=True,
    ),
    Op("withdrawVote", "mutation($i: ID!) { withdrawVote(ideaId: $i) }", _idea, on_idea(lambda c: True), mutation=True),
    Op(
        "addComment",
        'mutation($i: ID!) { addComment(ideaId: $i, body: "A comment") { id official } }',
        _idea,
        on_idea(lambda c: True),
        mutation=True,
    ),
    Op(
        "flagComment",
        'mutation($c: ID!) { flagComment(id: $c, reason: "spam") }',
        lambda w, c: {"c": w.comments[c.vis]},
        on_idea(lambda c: True),
        mutation=True,
    ),
    Op(
        "hideComment",
        'mutation($c: ID!) { hideComment(id: $c, reason: "off topic") { id hidden } }',
        lambda w, c: {"c": w.comments[c.vis]},
        on_idea(lambda c: c.moderator),
        mutation=True,
    ),
    Op(
        "setIdeaStatus",
        'mutation($i: ID!) { setIdeaStatus(id: $i, status: UNDER_REVIEW, note: "looking") { status } }',
        lambda w, c: {"i": w.fresh[("setIdeaStatus", c)]},
        on_idea(lambda c: c.staff),
        mutation=True,
    ),
    Op(
        "mergeIdeas",
        "mutation($s: ID!, $t: ID!) { mergeIdeas(sourceId: $s, targetId: $t) { id } }",
        lambda w, c: {"s": w.fresh[("mergeIdeas", c)], "t": w.merge_target},
        on_idea(lambda c: c.staff),
        mutation=True,
    ),
    Op(
        "grantRole",
        "mutation($s: ID!) { grantRole(stakeholderId: $s, role: MEMBER) { id role } }",
        lambda w, c: {"s": w.dummy.id},
        writer(lambda c: c.role == "ADMIN"),
        per_idea=False,
        mutation=True,
    ),
    Op(
        "updateProfile",
        'mutation { updateProfile(input: { organization: "Acme" }) { id organization } }',
        lambda w, c: {},
        writer(),
        per_idea=False,
        mutation=True,
    ),
    Op(
        "createApiKey",
        'mutation { createApiKey(label: "matrix", scope: READ) { id secret } }',
        lambda w, c: {},
        writer(),
        per_idea=False,
        mutation=True,
    ),
    Op(
        "revokeApiKey",
        "mutation($k: ID!) { revokeApiKey(id: $k) }",
        lambda w, c: {"k": w.victim_key},
        writer(lambda c: c.role in ("ADMIN", "author"), denied="NOT_FOUND"),
        per_idea=False,
        mutation=True,
    ),
]


def callers() -> list[tuple[str, str | None]]:
    return [
        ("anonymous", None),
        ("author", "CUSTOMER"),
        *((role, kind) for role in ROLES for kind in KINDS),
        *(("api_read", kind) for kind in KINDS),
    ]


def cells(op: Op) -> list[Cell]:
    return [
        Cell(role, kind, vis) for role, kind in callers() for vis in (("public", "supplier") if op.per_idea else ("-",))
    ]


# --- the world the matrix runs in --------------------------------------------------------------------
@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with running_cluster("authz") as c:
        yield c


HIDE = 'mutation($c: ID!) { hideComment(id: $c, reason: "setup") { id } }'
COMMENT = "mutation($i: ID!, $b: String!) { addComment(ideaId: $i, body: $b) { id } }"
CREATE_KEY = 'mutation($s: ApiKeyScope!) { createApiKey(label: "k", scope: $s) { id secret } }'
CAST = "mutation($i: ID!) { castVote(ideaId: $i, weight: 1) { weight } }"


@pytest.fixture(scope="module")
async def world(cluster: Cluster) -> AsyncIterator[World]:
    api = Api(cluster.graphql_url)
    boss = await admin(api)
    tag = f"authz-{uuid.uuid4().hex[:8]}"
    author = await register(api, "CUSTOMER", "author", expertise=[tag])
    people: dict[tuple[str, str | None], Person | None] = {("anonymous", None): None, ("author", "CUSTOMER"): author}
    gate = asyncio.Semaphore(4)

    async def make(role: str, kind: str) -> None:
        async with gate:
            people[(role, kind)] = await with_role(api, boss, kind, role, f"authz-{role.lower()}")

    await asyncio.gather(*(make(role, kind) for role in ROLES for kind in KINDS))
    for kind in KINDS:  # read-only API keys, of a MEMBER of each kind
        owner = people[("MEMBER", kind)]
        assert owner is not None
        key = (await api.ok(CREATE_KEY, {"s": "READ"}, token=owner.token))["createApiKey"]
        people[("api_read", kind)] = Person(owner.email, key["secret"], owner.id, kind, "MEMBER")
    titles = {"public": f"Public lighthouse {tag}", "supplier": f"Supplier quasar {tag}"}
    ideas = {
        "public": await propose(api, author, titles["public"], tags=[tag]),
        "supplier": await propose(api, author, titles["supplier"], ["SUPPLIER"], tags=[tag]),
    }
    merge_target = await propose(api, author, f"Merge target {tag}")
    fresh: dict[tuple[str, Cell], str] = {}

    async def fresh_idea(op: str, cell: Cell) -> None:
        async with gate:
            fresh[(op, cell)] = await propose(
                api,
                author,
                f"{op} {cell.role} {cell.kind} {uuid.uuid4().hex[:6]}",
                ["SUPPLIER"] if cell.vis == "supplier" else [],
            )

    by_name = {op.name: op for op in TABLE}
    await asyncio.gather(
        *(fresh_idea(name, c) for name in ("setIdeaStatus", "mergeIdeas") for c in cells(by_name[name]))
    )
    await wait_known(cluster, [pk_of(i) for i in [*ideas.values(), merge_target]])
    comments, hidden = {}, {}
    for vis, idea in ideas.items():
        comments[vis] = (await api.ok(COMMENT, {"i": idea, "b": "Flag or hide me"}, token=author.token))["addComment"][
            "id"
        ]
        hidden[vis] = (await api.ok(COMMENT, {"i": idea, "b": SECRET_BODY}, token=author.token))["addComment"]["id"]
        await api.ok(HIDE, {"c": hidden[vis]}, token=boss.token)
        await api.ok(CAST, {"i": idea}, token=author.token)
    victim_key = (await api.ok(CREATE_KEY, {"s": "READ_WRITE"}, token=author.token))["createApiKey"]["id"]
    dummy = await register(api, "PARTNER", "authz-dummy")
    emails = [p.email for p in people.values() if p is not None] + [author.email, dummy.email, boss.email]
    yield World(
        cluster,
        api,
        people,
        author,
        boss,
        ideas,
        titles,
        comments,
        hidden,
        fresh,
        merge_target,
        victim_key,
        dummy,
        tag,
        emails,
    )
    await api.aclose()


# --- running the matrix --------------------------------------------------------------------------------
@dataclass
class Verdict:
    op: str
    cell: Cell
    expected: str
    got: str
    problem: str | None


def got_of(outcome: Outcome, root: str) -> str:
    if outcome.hang or outcome.status is None:
        return "HANG"
    if outcome.codes:
        return ",".join(outcome.codes)
    if outcome.status != 200 or not isinstance(outcome.data, dict):
        return f"HTTP {outcome.status}"
    return NULL if outcome.data.get(root) is None else OK


def root_field(document: str) -> str:
    match = re.search(r"\{\s*(\w+)", document)
    assert match
    return match.group(1)


async def run_cell(w: World, op: Op, cell: Cell, gate: asyncio.Semaphore) -> Verdict:
    who = w.people[(cell.role, cell.kind)]
    async with gate:
        outcome = await w.api(op.document, op.variables(w, cell), token=who.token if who else None)
    w.answers.append(outcome.text)
    expected = op.expect(cell)
    got = got_of(outcome, root_field(op.document))
    problem = None
    if got != expected:
        problem = f"expected {expected}, got {got}: {outcome.text[:300]}"
    elif got == OK and op.check is not None:
        problem = op.check(w, cell, outcome.data)
    return Verdict(op.name, cell, expected, got, problem)


async def run_ops(w: World, ops: list[Op]) -> list[Verdict]:
    gate = asyncio.Semaphore(16)
    # register / login hash or verify a password (argon2, CPU-bound): a few at a time, else a
    # burst of them queues past the gateway's upstream deadline (UNAVAILABLE, retryable).
    argon = asyncio.Semaphore(3)
    return list(
        await asyncio.gather(
            *(
                run_cell(w, op, cell, argon if op.name in ("register", "login") else gate)
                for op in ops
                for cell in cells(op)
            )
        )
    )


def summarise(part: str, verdicts: list[Verdict], xfail: int = 0) -> list[str]:
    wrong = [f"{v.op} as {v.cell.role}/{v.cell.kind} on {v.cell.vis}: {v.problem}" for v in verdicts if v.problem]
    allowed = sum(1 for v in verdicts if not v.problem and v.expected in (OK, NULL) and v.got == OK)
    denied = sum(1 for v in verdicts if not v.problem) - allowed
    RESULTS.record(
        "authz",
        part,
        {
            "part": part,
            "inputs tried": len(verdicts),
            "allowed as expected": allowed,
            "denied as expected": denied,
            "wrong": len(wrong),
            "known bugs (xfail)": xfail,
            "result": "pass" if not wrong else "FAIL",
            "notes": "; ".join(wrong[:5]) if wrong else None,
        },
    )
    return wrong


def leaks(w: World) -> list[str]:
    """API3: what must never be in any answer."""
    found = []
    for text in w.answers:
        lowered = text.lower()
        for email in w.emails:
            if email.lower() in lowered:
                found.append(f"e-mail {email}")
        for needle in ("$argon2", "password", "password_hash", "traceback", "sqlalchemy", "asyncpg"):
            if needle in lowered:
                found.append(needle)
    return sorted(set(found))


async def test_queries_matrix(world: World) -> None:
    ops = [op for op in TABLE if not op.mutation]
    verdicts = await run_ops(world, ops)
    wrong = summarise("queries x roles x kinds x visibility", verdicts)
    assert not wrong, "\n".join(wrong[:30])


async def test_mutations_matrix(world: World) -> None:
    ops = [op for op in TABLE if op.mutation]
    verdicts = await run_ops(world, ops)
    wrong = summarise("mutations x roles x kinds x visibility", verdicts)
    assert not wrong, "\n".join(wrong[:30])


async def test_no_private_property_in_any_answer(world: World) -> None:
    """Runs after the matrix: every answer it got is scanned (new key secrets aside)."""
    answers = [a for a in world.answers if '"secret"' not in a]
    found = leaks(World(**{**world.__dict__, "answers": answers}))
    RESULTS.record(
        "authz",
        "api3",
        {
            "part": "API3: answers scanned for e-mails, password hashes, traces",
            "inputs tried": len(answers),
            "allowed as expected": "-",
            "denied as expected": "-",
            "wrong": len(found),
            "known bugs (xfail)": 0,
            "result": "pass" if not found else "FAIL",
            "notes": ", ".join(found) if found else None,
        },
    )
    assert len(answers) > 500
    assert not found


# --- credentials ---------------------------------------------------------------------------------------
def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict[str, Any], claims: dict[str, Any], sign: Callable[[bytes], bytes]) -> str:
    head = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
    return head + "." + b64(sign(head.encode()))


async def test_forged_expired_and_revoked_credentials_are_unauthenticated(world: World) -> None:
    w, api = world, world.api
    (row,) = await query(w.cluster, "stakeholders", "SELECT kid, private_pem FROM signing_key LIMIT 1")
    key = serialization.load_pem_private_key(row["private_pem"].encode(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    kid = row["kid"]
    member = w.people[("MEMBER", "CUSTOMER")]
    assert member is not None
    claims = jwt.decode(member.token, options={"verify_signature": False})
    now = int(time.time())
    async with httpx.AsyncClient(timeout=10) as http:
        jwks = (await http.get(f"{w.cluster.url('stakeholders')}/.well-known/jwks.json")).json()
    public_raw = base64.urlsafe_b64decode(jwks["keys"][0]["x"] + "==")
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )

    def ed(k: Ed25519PrivateKey) -> Callable[[bytes], bytes]:
        return k.sign

    def hs(secret: bytes) -> Callable[[bytes], bytes]:
        return lambda data: hmac.new(secret, data, hashlib.sha256).digest()

    good = forge({"alg": "EdDSA", "typ": "JWT", "kid": kid}, claims, ed(key))
    parts = member.token.split(".")
    escalated = b64(json.dumps({**claims, "role": "ADMIN"}).encode())
    other_key = Ed25519PrivateKey.generate()
    revoked = (await api.ok(CREATE_KEY, {"s": "READ_WRITE"}, token=member.token))["createApiKey"]
    assert (await api.ok("{ me { id } }", token=revoked["secret"]))["me"]["id"] == member.id
    await api.ok("mutation($k: ID!) { revokeApiKey(id: $k) }", {"k": revoked["id"]}, token=member.token)
    bad: dict[str, str] = {
        "tampered claims (role ADMIN), original signature": f"{parts[0]}.{escalated}.{parts[2]}",
        "tampered signature": f"{parts[0]}.{parts[1]}.{parts[2][:-4]}AAAA",
        "expired": forge({"alg": "EdDSA", "kid": kid}, {**claims, "iat": now - 7200, "exp": now - 3600}, ed(key)),
        "no exp": forge({"alg": "EdDSA", "kid": kid}, {k: v for k, v in claims.items() if k != "exp"}, ed(key)),
        "alg none": forge({"alg": "none", "kid": kid}, {**claims, "role": "ADMIN"}, lambda d: b""),
        "alg none, no signature part": forge({"alg": "none", "kid": kid}, claims, lambda d: b"")[:-1],
        "HS256 with the raw public key": forge({"alg": "HS256", "kid": kid}, claims, hs(public_raw)),
        "HS256 with the PEM public key": forge({"alg": "HS256", "kid": kid}, claims, hs(public_pem)),
        "HS256 with the JWK": forge({"alg": "HS256", "kid": kid}, claims, hs(json.dumps(jwks["keys"][0]).encode())),
        "RS256 header, EdDSA signature": forge({"alg": "RS256", "kid": kid}, claims, ed(key)),
        "foreign key, same kid": forge({"alg": "EdDSA", "kid": kid}, claims, ed(other_key)),
        "foreign key, unknown kid": forge({"alg": "EdDSA", "kid": "not-ours"}, claims, ed(other_key)),
        "wrong audience": forge({"alg": "EdDSA", "kid": kid}, {**claims, "aud": "someone-else"}, ed(key)),
        "wrong issuer": forge({"alg": "EdDSA", "kid": kid}, {**claims, "iss": "evil"}, ed(key)),
        "not a token": "garbage",
        "unknown API key": "ccp_" + "x" * 43,
        "revoked API key": revoked["secret"],
        "9 KB token": "a." + "b" * 9000 + ".c",
    }
    assert (await api.ok("{ me { id } }", token=good))["me"]["id"] == member.id, "the forging itself is right"
    probes = {
        "me": ("{ me { id } }", {}),
        "castVote": (CAST, {"i": w.ideas["public"]}),
    }
    votes_url = f"{w.cluster.url('votes')}/ideas/{pk_of(w.ideas['public'])}/vote"
    problems: list[str] = []
    tried = 0
    async with httpx.AsyncClient(timeout=10) as http:
        for label, token in bad.items():
            for probe, (document, variables) in probes.items():
                outcome = await api(document, variables, token=token)
                tried += 1
                if outcome.codes != ("UNAUTHENTICATED",):
                    problems.append(f"{label} / {probe}: {outcome.status} {outcome.text[:200]}")
            if token.startswith("ccp_"):
                continue  # API keys are a gateway notion; services take JWTs only
            response = await http.put(votes_url, json={"weight": 1}, headers={"Authorization": f"Bearer {token}"})
            tried += 1
            if response.status_code != 401 or response.json().get("code") != "UNAUTHENTICATED":
                problems.append(f"{label} / votes service: {response.status_code} {response.text[:200]}")
        for header in ("Basic dXNlcjpwYXNz", "Bearer", "bearer", "Token abc"):
            outcome = await api.raw(b'{"query": "{ me { id } }"}', headers={"authorization": header})
            tried += 1
            if outcome.codes != ("UNAUTHENTICATED",):
                problems.append(f"Authorization: {header!r}: {outcome.status} {outcome.text[:200]}")
    RESULTS.record(
        "authz",
        "tokens",
        {
            "part": "forged / expired / alg none / HS-RS confusion / revoked credentials",
            "inputs tried": tried,
            "allowed as expected": 0,
            "denied as expected": tried - len(problems),
            "wrong": len(problems),
            "known bugs (xfail)": 0,
            "result": "pass" if not problems else "FAIL",
            "notes": "; ".join(problems[:5])
            if problems
            else f"{len(bad)} credentials x (gateway query, gateway "
            "mutation, votes service) + 4 malformed Authorization headers",
        },
    )
    assert not problems, "\n".join(problems)


def test_table_covers_every_operation_of_the_served_schema() -> None:
    """A new query or mutation must get its row in TABLE (the table is the contract's ACL)."""
    from graphql import build_schema

    from tests.resilience.report import ROOT

    schema = build_schema((ROOT / "gateway" / "schema.graphql").read_text())
    served = set(schema.query_type.fields) | set(schema.mutation_type.fields)  # type: ignore[union-attr]
    covered = {root_field(op.document) for op in TABLE} | {"node"}
    assert served - covered == set(), f"operations without a row in TABLE: {sorted(served - covered)}"
    assert Counter(op.name for op in TABLE).most_common(1)[0][1] == 1


# --- subscriptions (graphql-transport-ws) ----------------------------------------------------------------
async def subscribe_once(
    w: World, token: str | None, document: str, variables: dict[str, Any], poke: Callable[[], Awaitable[Any]]
) -> str:
    """What a subscriber gets first: an error code, "connected" (a live update: the subscription
    runs), or the close code of a refused connection. Until the first message arrives the idea is
    changed again and again (`poke`), so a running subscription has something to emit and a
    refusal is told apart by what arrives, not by a silence."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed
    from websockets.typing import Subprotocol

    url = "ws" + w.cluster.graphql_url.removeprefix("http")
    async with connect(url, subprotocols=[Subprotocol("graphql-transport-ws")], open_timeout=10) as ws:
        payload = {"Authorization": f"Bearer {token}"} if token else {}
        await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
        try:
            ack = json.loads(await asyncio.wait_for(ws.recv(), 10))
        except ConnectionClosed as closed:
            return f"closed {closed.rcvd.code if closed.rcvd else '?'}"
        assert ack["type"] == "connection_ack", ack
        await ws.send(
            json.dumps({"id": "1", "type": "subscribe", "payload": {"query": document, "variables": variables}})
        )
        first: list[dict[str, Any]] = []

        async def answered() -> bool:
            try:
                message = json.loads(await asyncio.wait_for(ws.recv(), 1))  # websockets: safe to cancel
            except TimeoutError:
                await poke()  # (a change made before the subscription listens is not seen: again)
                return False
            if message.get("id") == "1":
                first.append(message)
            return bool(first)

        await eventually(answered, timeout=60, interval=0, what="the subscription's first message")
        (message,) = first
        if message["type"] == "error":
            return ",".join(e.get("extensions", {}).get("code", "?") for e in message["payload"])
        if message["type"] == "next" and message["payload"].get("errors"):
            return ",".join(e.get("extensions", {}).get("code", "?") for e in message["payload"]["errors"])
        return "connected" if message["type"] == "next" else str(message["type"])


async def test_subscriptions_check_visibility_and_credentials(world: World) -> None:
    w = world
    documents = {
        "ideaChanged": "subscription($i: ID!) { ideaChanged(id: $i) { id title } }",
        "commentAdded": "subscription($i: ID!) { commentAdded(ideaId: $i) { id body } }",
    }
    customer, supplier = w.people[("MEMBER", "CUSTOMER")], w.people[("MEMBER", "SUPPLIER")]
    assert customer is not None and supplier is not None
    # Ideas of this test's own, so that the comments that make subscriptions emit change no other test's.
    ideas = {
        "public": await propose(w.api, w.author, f"Live public {w.tag}"),
        "supplier": await propose(w.api, w.author, f"Live supplier {w.tag}", ["SUPPLIER"]),
    }
    await wait_known(w.cluster, [pk_of(i) for i in ideas.values()])

    def poke(idea: str) -> Callable[[], Awaitable[Any]]:
        return lambda: w.api.ok(COMMENT, {"i": idea, "b": "a live change"}, token=w.author.token)

    cases = [
        (label, token, name, vis, expected)
        for name in documents
        for label, token, vis, expected in (
            ("anonymous", None, "supplier", "NOT_FOUND"),
            ("CUSTOMER member", customer.token, "supplier", "NOT_FOUND"),
            ("SUPPLIER member", supplier.token, "supplier", "connected"),
            ("anonymous", None, "public", "connected"),
            ("forged token", customer.token[:-6] + "AAAAAA", "public", "closed 4403"),
        )
    ]
    problems = []
    for label, token, name, vis, expected in cases:
        got = await subscribe_once(w, token, documents[name], {"i": ideas[vis]}, poke(ideas[vis]))
        if got != expected:
            problems.append(f"{name} on the {vis} idea as {label}: expected {expected}, got {got}")
    RESULTS.record(
        "authz",
        "subscriptions",
        {
            "part": "subscriptions: visibility and credentials on connection_init",
            "inputs tried": len(cases),
            "allowed as expected": sum(1 for c in cases if c[4] == "connected"),
            "denied as expected": sum(1 for c in cases if c[4] != "connected") - len(problems),
            "wrong": len(problems),
            "known bugs (xfail)": 0,
            "result": "pass" if not problems else "FAIL",
            "notes": "; ".join(problems) or None,
        },
    )
    assert not problems, problems


async def test_no_existence_leak_through_parents_or_merge_targets(world: World) -> None:
    """A parent comment on an idea the caller cannot see is NOT_FOUND (a comment on another visible
    idea: BAD_USER_INPUT); an idea merged into one the caller cannot see shows `mergedInto: null`."""
    w, api = world, world.api
    customer = w.people[("MEMBER", "CUSTOMER")]
    assert customer is not None
    reply = 'mutation($i: ID!, $p: ID) { addComment(ideaId: $i, body: "reply", parentId: $p) { id } }'
    other_public = await propose(api, w.author, f"Other public {w.tag}")
    await wait_known(w.cluster, [pk_of(other_public)])
    on_secret = await api(reply, {"i": other_public, "p": w.comments["supplier"]}, token=customer.token)
    on_visible = await api(reply, {"i": other_public, "p": w.comments["public"]}, token=customer.token)
    source = await propose(api, w.author, f"Merged away {w.tag}")
    await api.ok(
        "mutation($s: ID!, $t: ID!) { mergeIdeas(sourceId: $s, targetId: $t) { id } }",
        {"s": source, "t": w.ideas["supplier"]},
        token=w.boss.token,
    )
    seen = {
        who: await api(
            "query($i: ID!) { idea(id: $i) { status mergedInto { id title } } }",
            {"i": source},
            token=token,
        )
        for who, token in (("customer", customer.token), ("anonymous", None))
    }
    supplier = w.people[("MEMBER", "SUPPLIER")]
    assert supplier is not None
    visible = await api("query($i: ID!) { idea(id: $i) { mergedInto { id } } }", {"i": source}, token=supplier.token)
    got = {
        "parent on an invisible idea": on_secret.label,
        "parent on another visible idea": on_visible.label,
        **{f"mergedInto as {who}": str(o.data["idea"]["mergedInto"]) for who, o in seen.items()},
        "mergedInto as a supplier": "visible" if visible.data["idea"]["mergedInto"] else "null",
    }
    expected = {
        "parent on an invisible idea": "NOT_FOUND",
        "parent on another visible idea": "BAD_USER_INPUT",
        "mergedInto as customer": "None",
        "mergedInto as anonymous": "None",
        "mergedInto as a supplier": "visible",
    }
    wrong = [f"{k}: {got[k]} (expected {v})" for k, v in expected.items() if got[k] != v]
    RESULTS.record(
        "authz",
        "indirect",
        {
            "part": "indirect references: parent comments, mergedInto",
            "inputs tried": len(expected),
            "allowed as expected": 1,
            "denied as expected": len(expected) - 1 - len(wrong),
            "wrong": len(wrong),
            "known bugs (xfail)": 0,
            "result": "pass" if not wrong else "FAIL",
            "notes": "; ".join(wrong) or None,
        },
    )
    assert not wrong, wrong
