"""Helpers for the ideas service tests (real PostgreSQL and nats-server)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import text

from devstack.testing import started_consumers
from services.ideas.consumers import SUBSCRIPTIONS
from shared.auth import Scope, TokenIssuer
from shared.events.catalogue import Payload, Role, StakeholderKind
from shared.events.envelope import Envelope

HANDLERS = {sub.durable: sub for sub in SUBSCRIPTIONS}


@dataclass(frozen=True)
class Person:
    id: uuid.UUID
    kind: str
    role: str
    headers: dict[str, str]


def caller(tokens: TokenIssuer, kind: str = "CUSTOMER", role: str = "MEMBER", scope: str = "read-write") -> Person:
    sid = uuid.uuid4()
    return Person(
        sid,
        kind,
        role,
        {"Authorization": f"Bearer {tokens.issue(sid, StakeholderKind(kind), Role(role), scope=Scope(scope))}"},
    )


def unique(prefix: str = "t") -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


async def propose(client: httpx.AsyncClient, who: Person, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"title": f"Idea {unique()}", "body": "Some body text", "tags": []}
    body.update(overrides)
    r = await client.post("/ideas", json=body, headers=who.headers)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def deliver(
    app: FastAPI, durable: str, payload: Payload, envelope: Envelope | None = None
) -> tuple[bool, Envelope]:
    """Apply one event through the consumer runner (inbox + effect in one transaction)."""
    runner = await started_consumers(app)
    env = envelope or Envelope.of(payload)
    handler = HANDLERS[durable].subjects[env.type]
    return await runner.apply(durable, env, payload, handler), env


async def outbox(app: FastAPI, subject_id: object) -> list[dict[str, Any]]:
    """The envelopes staged in the outbox about one aggregate, oldest first."""
    async with app.state.runtime.sessionmaker() as session:
        rows = (
            await session.execute(
                text(
                    "SELECT convert_from(payload, 'UTF8')::jsonb AS env FROM outbox "
                    "WHERE convert_from(payload, 'UTF8')::jsonb ->> 'subject_id' = :s ORDER BY created_at"
                ),
                {"s": str(subject_id)},
            )
        ).all()
    return [r.env for r in rows]


def problem(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == code, r.text
