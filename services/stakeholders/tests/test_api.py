"""Stakeholder service on a real PostgreSQL and nats-server."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from shared.events.catalogue import StakeholderRegistered, StakeholderUpdated, subject_of


def email() -> str:
    return f"user-{uuid.uuid4().hex[:10]}@Example.org"


async def register(client: httpx.AsyncClient, **overrides: Any) -> httpx.Response:
    body = {"email": email(), "password": "correct horse battery", "display_name": "Ada", "kind": "CUSTOMER"}
    body.update(overrides)
    return await client.post("/stakeholders", json=body)


async def test_register_login_me_and_jwks(service_app) -> None:  # type: ignore[no-untyped-def]
    _, client = await service_app("stakeholders")
    address = email()
    r = await register(client, email=address, expertise=["Mobile", "api"], organization=" ACME ")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["stakeholder"]["role"] == "MEMBER"
    assert body["stakeholder"]["expertise"] == ["mobile", "api"]
    assert body["stakeholder"]["organization"] == "ACME"
    assert "email" not in body["stakeholder"] and "password_hash" not in body["stakeholder"]

    login = await client.post("/auth/login", json={"email": address.upper(), "password": "correct horse battery"})
    assert login.status_code == 200, login.text
    token = login.json()["token"]
    me = await client.get("/stakeholders/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.json()["id"] == body["stakeholder"]["id"]

    jwks = (await client.get("/.well-known/jwks.json")).json()
    assert jwks["keys"][0]["kty"] == "OKP" and jwks["keys"][0]["alg"] == "EdDSA"


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"password": "short"}, "BAD_USER_INPUT"),
        ({"email": "not-an-email"}, "BAD_USER_INPUT"),
        ({"kind": "ALIEN"}, "BAD_USER_INPUT"),
        ({"display_name": "   "}, "BAD_USER_INPUT"),
        ({"expertise": ["Not A Tag!"]}, "BAD_USER_INPUT"),
    ],
)
async def test_register_refuses_bad_input(service_app, overrides, code) -> None:  # type: ignore[no-untyped-def]
    _, client = await service_app("stakeholders")
    r = await register(client, **overrides)
    assert 400 <= r.status_code < 500
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == code


async def test_duplicate_email_is_a_conflict_case_insensitively(service_app) -> None:  # type: ignore[no-untyped-def]
    _, client = await service_app("stakeholders")
    address = email()
    assert (await register(client, email=address)).status_code == 201
    r = await register(client, email=address.upper())
    assert r.status_code == 409 and r.json()["code"] == "CONFLICT"


async def test_malformed_json_and_bad_token_are_4xx(service_app) -> None:  # type: ignore[no-untyped-def]
    _, client = await service_app("stakeholders")
    r = await client.post("/stakeholders", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["code"] == "BAD_USER_INPUT"
    r = await client.get("/stakeholders/me", headers={"Authorization": "Bearer abc.def.ghi"})
    assert r.status_code == 401 and r.json()["code"] == "UNAUTHENTICATED"
    r = await client.get(f"/stakeholders/{uuid.uuid4()}")
    assert r.status_code == 404 and r.json()["code"] == "NOT_FOUND"


async def test_login_failures_are_throttled(service_app) -> None:  # type: ignore[no-untyped-def]
    _, client = await service_app("stakeholders")
    address = email()
    await register(client, email=address)
    codes = []
    for _ in range(6):
        r = await client.post("/auth/login", json={"email": address, "password": "wrong password!"})
        codes.append(r.json()["code"])
    assert codes[:5] == ["UNAUTHENTICATED"] * 5
    assert codes[5] == "RATE_LIMITED"
    # Even the right password waits until the lock ends.
    r = await client.post("/auth/login", json={"email": address, "password": "correct horse battery"})
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1


async def test_admin_grants_roles_and_members_cannot(service_app) -> None:  # type: ignore[no-untyped-def]
    admin_email = email()
    _, client = await service_app(
        "stakeholders", bootstrap_admin_email=admin_email, bootstrap_admin_password="admin password 1"
    )
    admin = (await client.post("/auth/login", json={"email": admin_email, "password": "admin password 1"})).json()
    assert admin["stakeholder"]["role"] == "ADMIN" and admin["stakeholder"]["kind"] == "EMPLOYEE"
    member = (await register(client)).json()
    url = f"/stakeholders/{member['stakeholder']['id']}/role"
    r = await client.post(url, json={"role": "PRODUCT_TEAM"}, headers={"Authorization": f"Bearer {member['token']}"})
    assert r.status_code == 403 and r.json()["code"] == "FORBIDDEN"
    r = await client.post(url, json={"role": "PRODUCT_TEAM"}, headers={"Authorization": f"Bearer {admin['token']}"})
    assert r.status_code == 200 and r.json()["role"] == "PRODUCT_TEAM"


async def test_api_keys_are_hashed_scoped_and_revocable(service_app) -> None:  # type: ignore[no-untyped-def]
    _, client = await service_app("stakeholders")
    member = (await register(client)).json()
    auth = {"Authorization": f"Bearer {member['token']}"}
    created = await client.post("/api-keys", json={"label": "CI", "scope": "read"}, headers=auth)
    assert created.status_code == 201, created.text
    secret = created.json()["secret"]
    assert secret.startswith("ccp_")
    listed = (await client.get("/api-keys", headers=auth)).json()["items"]
    assert [k["label"] for k in listed] == ["CI"] and "secret" not in listed[0]
    token = (await client.post("/auth/api-key-token", json={"key": secret})).json()["token"]
    me = await client.get("/stakeholders/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
    revoked = await client.delete(f"/api-keys/{created.json()['id']}", headers=auth)
    assert revoked.json() == {"revoked": True}
    r = await client.post("/auth/api-key-token", json={"key": secret})
    assert r.status_code == 401


async def test_profile_update_publishes_updated_and_keeps_kind(service_app) -> None:  # type: ignore[no-untyped-def]
    app, client = await service_app("stakeholders")
    member = (await register(client, kind="SUPPLIER")).json()
    auth = {"Authorization": f"Bearer {member['token']}"}
    r = await client.patch("/stakeholders/me", json={"expertise": ["Billing"], "organization": "Initech"}, headers=auth)
    assert r.status_code == 200, r.text
    assert r.json()["expertise"] == ["billing"] and r.json()["organization"] == "Initech"
    assert r.json()["kind"] == "SUPPLIER" and r.json()["display_name"] == "Ada"
    r = await client.patch("/stakeholders/me", json={"display_name": ""}, headers=auth)
    assert r.status_code in (400, 422) and r.json()["code"] == "BAD_USER_INPUT"
    from sqlalchemy import text

    async with app.state.runtime.engine.connect() as conn:
        subjects = (
            (
                await conn.execute(
                    text("SELECT subject FROM outbox WHERE convert_from(payload, 'UTF8') LIKE :id ORDER BY created_at"),
                    {"id": f"%{member['stakeholder']['id']}%"},
                )
            )
            .scalars()
            .all()
        )
    assert subjects == [subject_of(StakeholderRegistered), subject_of(StakeholderUpdated)]


async def test_nul_characters_are_bad_input_never_a_500(service_app) -> None:  # type: ignore[no-untyped-def]
    """PostgreSQL text cannot hold NUL: found by the acceptance suite as 500s (UNAVAILABLE through
    the gateway) on register, login, profile updates, API key labels and experts."""
    _, client = await service_app("stakeholders")
    for overrides in ({"email": "a\x00b@example.org"}, {"display_name": "A\x00"}, {"organization": "O\x00"}):
        r = await register(client, **overrides)
        assert r.status_code == 400 and r.json()["code"] == "BAD_USER_INPUT", r.text
    r = await client.post("/auth/login", json={"email": "a\x00b@example.org", "password": "correct horse battery"})
    assert r.status_code == 401 and r.json()["code"] == "UNAUTHENTICATED", r.text
    member = (await register(client)).json()
    auth = {"Authorization": f"Bearer {member['token']}"}
    for change in ({"display_name": "x\x00"}, {"organization": "x\x00"}):
        r = await client.patch("/stakeholders/me", json=change, headers=auth)
        assert r.status_code == 400 and r.json()["code"] == "BAD_USER_INPUT", r.text
    for label in ("CI\x00", "   "):
        r = await client.post("/api-keys", json={"label": label, "scope": "read"}, headers=auth)
        assert r.status_code == 400 and r.json()["code"] == "BAD_USER_INPUT", r.text
    for tag in ("a\x00", "not a tag"):
        r = await client.get("/experts", params={"tag": tag})
        assert r.status_code == 400 and r.json()["code"] == "BAD_USER_INPUT", r.text
    assert (await client.get("/experts", params={"tag": " Mobile "})).status_code == 200
