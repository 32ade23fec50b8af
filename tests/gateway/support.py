"""The gateway under test, in front of the REAL services (devstack.testing.running_services: the
four service apps in this process, on the session's PostgreSQL and nats-server).

- `Gateway`: `gateway.main.create_app(transports=...)` with every service reached through an
  `Upstream` transport that records each call (batching tests count them) and can be told to
  fail for some paths (`fail`): a failure is injected, never a service rule re-implemented.
  Operations go through the app over HTTP, like a client's; `Result` reads the answer.
- `World`: the data one test needs, created through the services' own HTTP APIs (new people and
  ideas per test; ideas carry the test's own `tag`, so a list can be limited to them)."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import uvicorn
from nats.aio.msg import Msg

from devstack.testing import ServiceApps
from devstack.waiting import eventually
from gateway.live import LiveHub
from gateway.main import create_app
from gateway.settings import GatewaySettings
from shared.auth import Scope, TokenIssuer
from shared.events.catalogue import Role, StakeholderKind
from shared.messaging import connect_nats

# --- upstream calls: recorded, and failures injected -----------------------------------------------
GatewayFactory = Callable[..., Awaitable["Gateway"]]
Forward = Callable[[httpx.Request], Awaitable[httpx.Response]]
Fault = Callable[[httpx.Request, Forward], Awaitable[httpx.Response]]


@dataclass(frozen=True)
class Call:
    service: str
    request: httpx.Request
    status: int | None  # None: no answer (the transport failed)


class Upstream(httpx.AsyncBaseTransport):
    """One service as this gateway reaches it: the real app, each call recorded once answered
    (or failed); while a fault is set for a request's path, the fault answers instead."""

    def __init__(self, name: str, inner: httpx.AsyncBaseTransport, calls: list[Call]) -> None:
        self.name = name
        self.inner = inner
        self.calls = calls
        self.faults: list[tuple[Callable[[httpx.Request], bool], Fault]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        status = None
        try:
            response = await self._answer(request)
            status = response.status_code
            return response
        finally:
            self.calls.append(Call(self.name, request, status))

    async def _answer(self, request: httpx.Request) -> httpx.Response:
        for applies, fault in self.faults:
            if applies(request):
                return await fault(request, self.inner.handle_async_request)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        """The service apps outlive every gateway: nothing to close here."""


def raising(error: type[httpx.TransportError], message: str) -> Fault:
    """The call fails in the transport (connection refused, timeout...)."""

    async def fault(request: httpx.Request, _: Forward) -> httpx.Response:
        raise error(message, request=request)

    return fault


def answering(response: Callable[[], httpx.Response]) -> Fault:
    async def fault(request: httpx.Request, _: Forward) -> httpx.Response:
        return response()

    return fault


async def hanging(request: httpx.Request, _: Forward) -> httpx.Response:
    """A service that accepts the call and never answers."""
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


def rewriting(change: Callable[[Any], None]) -> Fault:
    """The service's real answer, its JSON body changed by `change` (an answer the gateway does
    not expect)."""

    async def fault(request: httpx.Request, forward: Forward) -> httpx.Response:
        response = await forward(request)
        body = orjson.loads(await response.aread())
        change(body)
        return httpx.Response(
            response.status_code, content=orjson.dumps(body), headers={"content-type": "application/json"}
        )

    return fault


def problem(status: int, code: str, detail: str, **extra: Any) -> httpx.Response:
    body = {"type": f"urn:problem:{code.lower()}", "title": code, "status": status, "detail": detail, "code": code}
    body.update(extra)
    return httpx.Response(status, content=orjson.dumps(body), headers={"content-type": "application/problem+json"})


# --- results -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Error:
    message: str
    extensions: dict[str, Any] | None
    formatted: dict[str, Any]


@dataclass(frozen=True)
class Result:
    """A GraphQL answer as served (the shape of strawberry's ExecutionResult)."""

    data: Any
    errors: list[Error] | None

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> Result:
        errors = body.get("errors")
        return cls(
            data=body.get("data"),
            errors=[Error(e.get("message", ""), e.get("extensions"), e) for e in errors] if errors else None,
        )


def codes(result: Result) -> list[str]:
    return [str((e.extensions or {}).get("code")) for e in result.errors or []]


# --- the gateway ---------------------------------------------------------------------------------------
class Gateway:
    """`gateway.main.create_app` in front of `services`, its lifespan running until `stop`;
    `http` calls it. `hub=` replaces its live updates; `nats_url=` connects it to NATS (it is
    not connected otherwise). Other keywords are settings."""

    def __init__(
        self,
        services: ServiceApps,
        public_key_pem: str,
        *,
        hub: LiveHub | None = None,
        nats_url: str | None = None,
        **settings: Any,
    ) -> None:
        self.log: list[Call] = []
        self.upstreams = {name: Upstream(name, t, self.log) for name, t in services.transports.items()}
        values: dict[str, Any] = {"log_json": False, "log_level": "WARNING", "jwt_public_key": public_key_pem}
        if nats_url is not None:
            values["nats_url"] = nats_url
        self.app = create_app(
            GatewaySettings(**values, **settings), transports=self.upstreams, hub=hub, connect_nats=nats_url is not None
        )
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://gateway")
        self._stack = AsyncExitStack()

    async def start(self) -> Gateway:
        await self._stack.enter_async_context(self.app.router.lifespan_context(self.app))
        await self._stack.enter_async_context(self.http)
        return self

    async def stop(self) -> None:
        await self._stack.aclose()

    async def execute(self, query: str, variables: dict[str, Any] | None = None, token: str | None = None) -> Result:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        response = await self.http.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
        return Result.of(response.json())

    # what the services were asked
    @property
    def calls(self) -> list[tuple[str, str, str]]:
        return [(c.service, c.request.method, c.request.url.path) for c in self.log]

    def requests(self, service: str | None = None) -> list[httpx.Request]:
        return [c.request for c in self.log if service in (None, c.service)]

    def count(self, service: str | None = None, path: str | None = None) -> int:
        return len(self.answers(service, path))

    def answers(self, service: str | None = None, path: str | None = None) -> list[int | None]:
        """The status of each call (to `service`, at `path`), in order."""
        return [c.status for c in self.log if service in (None, c.service) and path in (None, c.request.url.path)]

    def endpoints(self) -> Counter[str]:
        return Counter(f"{s} {m} {p}" for s, m, p in self.calls)

    def fail(self, service: str, fault: Fault, path: str | None = None, method: str | None = None) -> None:
        """From now on `fault` answers the service's calls (to `path`, with `method`, when given)."""

        def applies(request: httpx.Request) -> bool:
            return path in (None, request.url.path) and method in (None, request.method)

        self.upstreams[service].faults.append((applies, fault))

    @property
    def runtime(self) -> Any:
        """The running gateway's runtime (its caches), for the tests of those caches only."""
        return self.app.state.runtime

    @asynccontextmanager
    async def serve(self) -> AsyncIterator[str]:
        """The app behind a real uvicorn on a free port (WebSockets): its ws:// URL. The app's
        lifespan is already running."""
        server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=0, log_config=None, lifespan="off"))
        task = asyncio.create_task(server.serve())
        try:
            await eventually(lambda: server.started or task.done(), timeout=10, what="uvicorn started")
            port = server.servers[0].sockets[0].getsockname()[1]
            yield f"ws://127.0.0.1:{port}/graphql"
        finally:
            server.should_exit = True
            await asyncio.wait_for(task, 10)


@asynccontextmanager
async def nats_messages(nats_url: str, subject: str) -> AsyncIterator[list[Msg]]:
    """The messages published on `subject` while inside, as they arrive (subscribed on entry)."""
    received: list[Msg] = []

    async def keep(msg: Msg) -> None:
        received.append(msg)

    nc = await connect_nats(nats_url, "gateway-tests")
    try:
        await nc.subscribe(subject, cb=keep)
        await nc.flush()
        yield received
    finally:
        await nc.close()


# --- data, through the services' APIs ---------------------------------------------------------------
@dataclass(frozen=True)
class Person:
    id: uuid.UUID
    kind: StakeholderKind
    role: Role
    token: str


class World:
    """What one test needs, created through the services' HTTP APIs. People are registered
    (MEMBERs use the token registration gave them; other roles are granted by an ADMIN and get
    a token from `tokens`, signed with the same key)."""

    def __init__(self, services: ServiceApps, tokens: TokenIssuer) -> None:
        self.services = services
        self.tokens = tokens
        self.tag = f"t-{uuid.uuid4().hex[:12]}"
        # staff: sees every idea (PRODUCT_TEAM/ADMIN), used to set things up and to look
        self.staff = tokens.issue(uuid.uuid4(), StakeholderKind.EMPLOYEE, Role.ADMIN)

    async def send(self, service: str, method: str, path: str, token: str | None, **kwargs: Any) -> httpx.Response:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        return await self.services.clients[service].request(method, path, headers=headers, **kwargs)

    async def call(self, service: str, method: str, path: str, token: str | None = None, **kwargs: Any) -> Any:
        """The answer's JSON body; anything but a success fails the test."""
        response = await self.send(service, method, path, token, **kwargs)
        assert response.status_code < 300, (service, method, path, response.status_code, response.text)
        return response.json()

    async def stakeholder(self, kind: str = "CUSTOMER", role: str = "MEMBER", name: str = "Ada") -> Person:
        body = {
            "email": f"{uuid.uuid4().hex}@example.com",
            "password": "correct horse battery",
            "display_name": name,
            "kind": kind,
            "expertise": ["mobile"],
        }
        registered = await self.call("stakeholders", "POST", "/stakeholders", json=body)
        sid = uuid.UUID(registered["stakeholder"]["id"])
        if role == "MEMBER":
            return Person(sid, StakeholderKind(kind), Role.MEMBER, registered["token"])
        person = Person(
            sid, StakeholderKind(kind), Role(role), self.tokens.issue(sid, StakeholderKind(kind), Role(role))
        )
        await self.grant(person, role)
        return person

    async def grant(self, who: Person, role: str) -> None:
        """An ADMIN sets the stakeholder's role (`who.token` keeps the role it was issued with)."""
        await self.call("stakeholders", "POST", f"/stakeholders/{who.id}/role", self.staff, json={"role": role})

    async def stakeholders(self, *names: str, kind: str = "CUSTOMER") -> list[Person]:
        return list(await asyncio.gather(*(self.stakeholder(kind=kind, name=n) for n in names)))

    def token(self, who: Person, scope: str = "read-write", ttl: int | None = None) -> str:
        return self.tokens.issue(who.id, who.kind, who.role, scope=Scope(scope), ttl=ttl)

    async def rename(self, who: Person, display_name: str) -> None:
        """A profile change at the stakeholders service itself (as through another gateway)."""
        await self.call("stakeholders", "PATCH", "/stakeholders/me", who.token, json={"display_name": display_name})

    async def api_key(self, owner: Person, scope: str = "read-write") -> str:
        created = await self.call(
            "stakeholders", "POST", "/api-keys", owner.token, json={"label": "ci", "scope": scope}
        )
        return str(created["secret"])

    async def idea(self, author: Person, *, visible_to: list[str] | None = None, title: str = "An idea") -> uuid.UUID:
        body = {"title": title, "body": "Body", "tags": ["mobile", self.tag], "visible_to": visible_to or []}
        return uuid.UUID((await self.call("ideas", "POST", "/ideas", author.token, json=body))["id"])

    async def known(self, *ideas: uuid.UUID) -> None:
        """Until the votes and comments services have the ideas' proposals (they arrive over
        NATS): before that they refuse votes and comments on them (404). One idea at a time:
        when the first is known the others mostly are too, and polling all at once would load
        the services more than the wait costs."""
        for idea in ideas:

            async def check(idea: uuid.UUID = idea) -> bool:
                # neither read changes anything (staff has no vote to withdraw)
                votes = await self.send("votes", "DELETE", f"/ideas/{idea}/vote", self.staff)
                comments = await self.send("comments", "GET", f"/ideas/{idea}/comments", self.staff)
                return votes.status_code == 200 and comments.status_code == 200

            await eventually(check, what=f"votes and comments know idea {idea}")

    async def comment(self, idea: uuid.UUID, author: Person, body: str = "Nice") -> uuid.UUID:
        added = await self.call("comments", "POST", f"/ideas/{idea}/comments", author.token, json={"body": body})
        return uuid.UUID(added["id"])

    async def vote(self, idea: uuid.UUID, voter: Person, weight: int = 2) -> None:
        await self.call("votes", "PUT", f"/ideas/{idea}/vote", voter.token, json={"weight": weight})

    async def move(self, idea: uuid.UUID, *statuses: str) -> None:
        for status in statuses:
            await self.call("ideas", "POST", f"/ideas/{idea}/status", self.staff, json={"status": status})

    async def until_votes_refuse(self, idea: uuid.UUID, status: str) -> None:
        """Until the votes service has the idea's status change to `status` (over NATS) and
        refuses votes on it for that reason (a probe voter's votes before that are accepted, and
        count; an earlier closed status refuses them too, naming itself)."""
        probe = self.tokens.issue(uuid.uuid4(), StakeholderKind.EMPLOYEE, Role.MEMBER)

        async def check() -> bool:
            answer = await self.send("votes", "PUT", f"/ideas/{idea}/vote", probe, json={"weight": 1})
            return answer.status_code == 409 and f" {status} " in answer.json().get("detail", "")

        await eventually(check, what=f"the votes service refuses votes on idea {idea} as {status}")

    async def read(self, idea: uuid.UUID) -> dict[str, Any]:
        """The idea as the ideas service has it now (as staff)."""
        return await self.call("ideas", "GET", f"/ideas/{idea}", self.staff)  # type: ignore[no-any-return]

    async def until_idea(self, idea: uuid.UUID, what: str, **expected: Any) -> None:
        """Until the ideas service's idea shows `expected` (projections arrive over NATS)."""

        async def check() -> bool:
            got = await self.read(idea)
            return all(got[k] == v for k, v in expected.items())

        await eventually(check, what=what)
