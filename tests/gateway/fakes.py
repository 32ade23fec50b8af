"""In-memory stand-ins for the four services behind httpx.MockTransport, and signed tokens.

The fakes answer like docs/service-apis.md says (snake_case JSON, problem+json errors, invisible
ideas left out / 404) and count every call, so tests can check batching and error mapping
without any server."""

from __future__ import annotations

import re
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from strawberry.types import ExecutionResult

from gateway.auth import Authenticator
from gateway.clients import build_services
from gateway.context import GatewayContext, Runtime
from gateway.errors import GatewaySchema
from gateway.live import LiveHub
from gateway.ratelimit import RateLimiter
from gateway.schema import build_schema
from gateway.settings import GatewaySettings
from shared.auth import JwtVerifier

ISSUER = AUDIENCE = "co-creation-platform"
_KEY = Ed25519PrivateKey.generate()
PUBLIC_PEM = (
    _KEY.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
)
NOW = "2025-01-01T12:00:00+00:00"


def make_token(
    sub: uuid.UUID,
    kind: str = "CUSTOMER",
    role: str = "MEMBER",
    scope: str = "read-write",
    ttl: int = 600,
    api_key_id: uuid.UUID | None = None,
) -> str:
    now = datetime.now(UTC)
    claims = {
        "sub": str(sub),
        "kind": kind,
        "role": role,
        "scope": scope,
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + timedelta(seconds=ttl),
    }
    if api_key_id is not None:  # a token the stakeholders service made for an API key says which
        claims["key"] = str(api_key_id)
    return jwt.encode(claims, _KEY, algorithm="EdDSA", headers={"kid": "test"})


def problem(status: int, code: str, detail: str, **extra: Any) -> httpx.Response:
    body = {"type": f"urn:problem:{code.lower()}", "title": code, "status": status, "detail": detail, "code": code}
    body.update(extra)
    return httpx.Response(status, content=orjson.dumps(body), headers={"content-type": "application/problem+json"})


def ok(data: Any, status: int = 200) -> httpx.Response:
    return httpx.Response(status, content=orjson.dumps(data), headers={"content-type": "application/json"})


@dataclass
class Caller:
    id: uuid.UUID
    kind: str
    role: str
    scope: str


@dataclass
class FakeUpstream:
    stakeholders: dict[uuid.UUID, dict[str, Any]] = field(default_factory=dict)
    ideas: dict[uuid.UUID, dict[str, Any]] = field(default_factory=dict)
    votes: dict[tuple[uuid.UUID, uuid.UUID], dict[str, Any]] = field(default_factory=dict)
    comments: dict[uuid.UUID, dict[str, Any]] = field(default_factory=dict)
    api_keys: dict[str, str] = field(default_factory=dict)  # secret -> JWT
    calls: list[tuple[str, str, str]] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)
    # service name -> a function answering instead of the fake (to simulate failures)
    overrides: dict[str, Callable[[httpx.Request], httpx.Response]] = field(default_factory=dict)
    # service name -> a whole transport (e.g. one that never answers)
    custom_transports: dict[str, httpx.AsyncBaseTransport] = field(default_factory=dict)

    # --- data -------------------------------------------------------------------------------------
    def add_stakeholder(self, kind: str = "CUSTOMER", role: str = "MEMBER", name: str = "Ada") -> uuid.UUID:
        sid = uuid.uuid4()
        self.stakeholders[sid] = {
            "id": str(sid),
            "display_name": name,
            "kind": kind,
            "organization": None,
            "role": role,
            "expertise": ["mobile"],
            "created_at": NOW,
        }
        return sid

    def add_idea(self, author: uuid.UUID, *, visible_to: list[str] | None = None, title: str = "An idea") -> uuid.UUID:
        iid = uuid.uuid4()
        self.ideas[iid] = {
            "id": str(iid),
            "title": title,
            "body": "Body",
            "tags": ["mobile"],
            "status": "OPEN",
            "status_note": None,
            "visible_to": visible_to or [],
            "author_id": str(author),
            "voters": 0,
            "score": 0,
            "tally": [],
            "comment_count": 0,
            "merged_into_id": None,
            "created_at": NOW,
            "updated_at": NOW,
            "version": 1,
            "recent_score": 0,
        }
        return iid

    def add_comment(self, idea: uuid.UUID, author: uuid.UUID, body: str = "Nice") -> uuid.UUID:
        cid = uuid.uuid4()
        self.comments[cid] = {
            "id": str(cid),
            "idea_id": str(idea),
            "author_id": str(author),
            "parent_id": None,
            "body": body,
            "official": False,
            "hidden": False,
            "created_at": NOW,
        }
        self.ideas[idea]["comment_count"] += 1
        return cid

    def add_vote(self, idea: uuid.UUID, voter: uuid.UUID, weight: int = 2) -> None:
        self.votes[(idea, voter)] = {
            "idea_id": str(idea),
            "voter_id": str(voter),
            "weight": weight,
            "cast_at": NOW,
        }

    def count(self, service: str | None = None) -> int:
        return sum(1 for s, _, _ in self.calls if service is None or s == service)

    def endpoints(self) -> Counter[str]:
        return Counter(f"{s} {m} {p}" for s, m, p in self.calls)

    # --- transport --------------------------------------------------------------------------------
    def transports(self) -> dict[str, httpx.AsyncBaseTransport]:
        names = ("stakeholders", "ideas", "votes", "comments")
        return {name: self.custom_transports.get(name) or httpx.MockTransport(self._handler(name)) for name in names}

    def _handler(self, service: str) -> Callable[[httpx.Request], httpx.Response]:
        def handle(request: httpx.Request) -> httpx.Response:
            self.calls.append((service, request.method, request.url.path))
            self.requests.append(request)
            if service in self.overrides:
                return self.overrides[service](request)
            if request.url.path == "/healthz":
                return ok({"status": "ok"})
            caller = self._caller(request)
            body = orjson.loads(request.content) if request.content else {}
            return getattr(self, f"_{service}")(request.method, request.url.path, request, body, caller)

        return handle

    def _caller(self, request: httpx.Request) -> Caller | None:
        auth = request.headers.get("authorization")
        if not auth:
            return None
        claims = jwt.decode(auth.split(" ", 1)[1], PUBLIC_PEM, algorithms=["EdDSA"], audience=AUDIENCE)
        return Caller(uuid.UUID(claims["sub"]), claims["kind"], claims["role"], claims["scope"])

    def visible(self, idea: dict[str, Any], caller: Caller | None) -> bool:
        if not idea["visible_to"]:
            return True
        if caller is None:
            return False
        return (
            caller.role in ("PRODUCT_TEAM", "ADMIN")
            or idea["author_id"] == str(caller.id)
            or (caller.kind in idea["visible_to"])
        )

    def _stakeholders(
        self, method: str, path: str, request: httpx.Request, body: Any, caller: Caller | None
    ) -> httpx.Response:
        if (method, path) == ("POST", "/stakeholders/batch"):
            items = [self.stakeholders[u] for i in body["ids"] if (u := uuid.UUID(i)) in self.stakeholders]
            return ok({"items": items})
        if (method, path) == ("GET", "/stakeholders/me"):
            if caller is None:
                return problem(401, "UNAUTHENTICATED", "authentication required")
            return ok(self.stakeholders[caller.id])
        if (method, path) == ("PATCH", "/stakeholders/me"):
            if caller is None:
                return problem(401, "UNAUTHENTICATED", "authentication required")
            self.stakeholders[caller.id].update(body)
            return ok(self.stakeholders[caller.id])
        if (method, path) == ("POST", "/auth/api-key-token"):
            token = self.api_keys.get(body.get("key", ""))
            if token is None:
                return problem(401, "UNAUTHENTICATED", "unknown or revoked API key")
            return ok({"token": token})
        if (method, path) == ("POST", "/auth/login"):
            return problem(401, "UNAUTHENTICATED", "wrong email or password")
        return problem(404, "NOT_FOUND", "no such route")

    def _ideas(
        self, method: str, path: str, request: httpx.Request, body: Any, caller: Caller | None
    ) -> httpx.Response:
        if (method, path) == ("POST", "/ideas/batch"):
            items = [
                self.ideas[u]
                for i in body["ids"]
                if (u := uuid.UUID(i)) in self.ideas and self.visible(self.ideas[u], caller)
            ]
            return ok({"items": items})
        if (method, path) == ("GET", "/ideas"):
            first = int(request.url.params.get("first", "20"))
            visible = [idea for idea in self.ideas.values() if self.visible(idea, caller)]
            after = request.url.params.get("after")
            start = int(after) if after else 0
            page = visible[start : start + first]
            return ok(
                {
                    "items": page,
                    "cursors": [str(start + i + 1) for i in range(len(page))],
                    "total_count": None if request.url.params.get("with_total") == "false" else len(visible),
                    "has_next_page": start + first < len(visible),
                    "end_cursor": str(start + len(page)) if page else None,
                }
            )
        if (method, path) == ("POST", "/ideas"):
            if caller is None:
                return problem(401, "UNAUTHENTICATED", "authentication required")
            iid = self.add_idea(caller.id, title=body["title"], visible_to=body.get("visible_to"))
            return ok(self.ideas[iid], status=201)
        if method == "GET" and (m := re.fullmatch(r"/ideas/([0-9a-f-]+)/revisions", path)):
            idea = self.ideas.get(uuid.UUID(m.group(1)))
            if idea is None or not self.visible(idea, caller):
                return problem(404, "NOT_FOUND", "idea not found")
            return ok(
                {
                    "items": [
                        {
                            "version": 1,
                            "title": idea["title"],
                            "body": idea["body"],
                            "tags": idea["tags"],
                            "editor_id": idea["author_id"],
                            "edited_at": NOW,
                        }
                    ]
                }
            )
        if method == "GET" and (m := re.fullmatch(r"/ideas/([0-9a-f-]+)", path)):
            idea = self.ideas.get(uuid.UUID(m.group(1)))
            if idea is None or not self.visible(idea, caller):
                return problem(404, "NOT_FOUND", "idea not found")
            return ok(idea)
        return problem(404, "NOT_FOUND", "no such route")

    def _votes(
        self, method: str, path: str, request: httpx.Request, body: Any, caller: Caller | None
    ) -> httpx.Response:
        if caller is None:
            return problem(401, "UNAUTHENTICATED", "authentication required")
        if (method, path) == ("POST", "/votes/mine"):
            items = [vote for i in body["idea_ids"] if (vote := self.votes.get((uuid.UUID(i), caller.id))) is not None]
            return ok({"items": items})
        if method == "PUT" and (m := re.fullmatch(r"/ideas/([0-9a-f-]+)/vote", path)):
            idea_id = uuid.UUID(m.group(1))
            idea = self.ideas.get(idea_id)
            if idea is None or not self.visible(idea, caller):
                return problem(404, "NOT_FOUND", "idea not found")
            if idea["status"] not in ("OPEN", "UNDER_REVIEW", "PLANNED"):
                return problem(409, "CONFLICT", "this idea does not accept votes")
            self.add_vote(idea_id, caller.id, body["weight"])
            return ok(self.votes[(idea_id, caller.id)])
        return problem(404, "NOT_FOUND", "no such route")

    def _comments(
        self, method: str, path: str, request: httpx.Request, body: Any, caller: Caller | None
    ) -> httpx.Response:
        if (method, path) == ("POST", "/comments/by-ideas"):
            pages: dict[str, Any] = {}
            for raw in body["idea_ids"]:
                idea_id = uuid.UUID(raw)
                idea = self.ideas.get(idea_id)
                if idea is None or not self.visible(idea, caller):
                    continue
                items = [c for c in self.comments.values() if c["idea_id"] == raw]
                page = items[: body["first"]]
                pages[raw] = {
                    "items": page,
                    "cursors": [str(i + 1) for i in range(len(page))],
                    "total_count": len(items),
                    "has_next_page": len(items) > len(page),
                    "end_cursor": str(len(page)) if page else None,
                }
            return ok({"pages": pages})
        if (method, path) == ("POST", "/comments/batch"):
            items = []
            for raw in body["ids"]:
                comment = self.comments.get(uuid.UUID(raw))
                if comment is not None and self.visible(self.ideas[uuid.UUID(comment["idea_id"])], caller):
                    items.append(comment)
            return ok({"items": items})
        return problem(404, "NOT_FOUND", "no such route")


def make_runtime(fake: FakeUpstream, settings: GatewaySettings | None = None, hub: LiveHub | None = None) -> Runtime:
    settings = settings or GatewaySettings()
    services = build_services(settings, fake.transports())
    verifier = JwtVerifier(jwks_url=None, public_key_pem=PUBLIC_PEM, issuer=ISSUER, audience=AUDIENCE)
    return Runtime(
        settings=settings,
        services=services,
        authenticator=Authenticator(verifier, services.stakeholders, api_key_ttl=30),
        hub=hub or LiveHub(),
        mutation_limiter=RateLimiter(settings.mutation_rate_per_second, settings.mutation_burst),
        anonymous_limiter=RateLimiter(settings.anonymous_mutation_rate_per_second, settings.anonymous_mutation_burst),
    )


def context(runtime: Runtime, token: str | None = None, *, websocket: bool = False) -> GatewayContext:
    return GatewayContext(runtime, authorization=f"Bearer {token}" if token else None, websocket=websocket)


class Gateway:
    """Runs operations against the schema with a fresh context per call, like one HTTP request."""

    def __init__(self, schema: GatewaySchema, fake: FakeUpstream, settings: GatewaySettings | None = None) -> None:
        self.schema = schema if settings is None else build_schema(settings)
        self.fake = fake
        self.runtime = make_runtime(fake, settings)

    async def execute(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> ExecutionResult:
        return await self.schema.execute(query, variable_values=variables, context_value=context(self.runtime, token))


def codes(result: ExecutionResult) -> list[str]:
    return [str((e.extensions or {}).get("code")) for e in result.errors or []]
