"""The token verifier's cache of verified tokens (pure: keys in memory, no servers)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm

import shared.auth
from shared.auth import JwtVerifier, TokenIssuer
from shared.problems import Problem

ISSUER, AUDIENCE = "test-issuer", "test-audience"


def issuer_for(key: Ed25519PrivateKey, kid: str) -> TokenIssuer:
    return TokenIssuer(key, kid, issuer=ISSUER, audience=AUDIENCE, ttl_seconds=600)


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every signature check the verifier makes, by token."""
    seen: list[str] = []
    real = jwt.decode

    def counting(token: str, *args: Any, **kwargs: Any) -> Any:
        seen.append(token)
        return real(token, *args, **kwargs)

    monkeypatch.setattr(shared.auth.jwt, "decode", counting)
    return seen


async def test_a_verified_token_is_checked_once_until_it_expires(decodes: list[str]) -> None:
    key = Ed25519PrivateKey.generate()
    now = [time.time()]
    verifier = JwtVerifier(
        jwks_url=None, public_keys={"k1": key.public_key()}, issuer=ISSUER, audience=AUDIENCE, clock=lambda: now[0]
    )
    who = uuid.uuid4()
    token = issuer_for(key, "k1").issue(who, "CUSTOMER", "MEMBER")

    first, second = await verifier.verify(token), await verifier.verify(token)
    assert first == second and first.id == who and first.kind == "CUSTOMER"
    assert decodes == [token], "the second request with the same token is served from the cache"

    # Past its exp the cached entry is not used: the token is checked again (and refused by PyJWT
    # on a real clock; here only the cache's clock moves).
    exp = jwt.PyJWT().decode(token, options={"verify_signature": False})["exp"]
    now[0] = exp + 1.0
    await verifier.verify(token)
    assert decodes == [token, token]


async def test_a_tampered_copy_of_a_cached_token_is_still_refused(decodes: list[str]) -> None:
    key = Ed25519PrivateKey.generate()
    verifier = JwtVerifier(jwks_url=None, public_keys={"k1": key.public_key()}, issuer=ISSUER, audience=AUDIENCE)
    token = issuer_for(key, "k1").issue(uuid.uuid4(), "CUSTOMER", "MEMBER")
    await verifier.verify(token)
    head, claims, signature = token.split(".")
    with pytest.raises(Problem) as refused:
        await verifier.verify(f"{head}.{claims}.{signature[:-4]}AAAA")
    assert refused.value.code == "UNAUTHENTICATED"


async def test_tokens_of_a_key_gone_from_the_jwks_are_forgotten(
    decodes: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    published = {"keys": [jwk(old, "old")]}

    def jwks(_: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=published)

    real_client = httpx.AsyncClient
    monkeypatch.setattr(
        shared.auth.httpx, "AsyncClient", lambda **kw: real_client(transport=httpx.MockTransport(jwks), **kw)
    )
    verifier = JwtVerifier(
        jwks_url="http://stakeholders/.well-known/jwks.json",
        issuer=ISSUER,
        audience=AUDIENCE,
        min_refresh_interval=0.0,
    )
    old_token = issuer_for(old, "old").issue(uuid.uuid4(), "PARTNER", "MEMBER")
    await verifier.verify(old_token)
    await verifier.verify(old_token)
    assert decodes == [old_token]

    # The stakeholder service rotates to a new key and drops the old one; the first token of the
    # new key makes the verifier refetch the JWKS, and the old key's tokens stop being accepted.
    published["keys"] = [jwk(new, "new")]
    await verifier.verify(issuer_for(new, "new").issue(uuid.uuid4(), "PARTNER", "MEMBER"))
    with pytest.raises(Problem) as refused:
        await verifier.verify(old_token)
    assert refused.value.code == "UNAUTHENTICATED"


def jwk(key: Ed25519PrivateKey, kid: str) -> dict[str, Any]:
    return {**OKPAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": kid, "alg": "EdDSA", "use": "sig"}
