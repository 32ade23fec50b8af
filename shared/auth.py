"""JWT verification, used by every service and by the gateway.

Tokens are issued by the stakeholder service and signed with its Ed25519 key (EdDSA); the
public keys come from its JWKS endpoint (cached, refetched on an unknown key id, at most once
per `min_refresh_interval`) or from a PEM configured in settings. Only EdDSA is accepted:
`none` and HS/RS confusion are refused by construction.

A verified token is remembered until its `exp` (bounded LRU): a client sends the same token with
every request, and the signature check plus claim parsing was a few percent of each service's CPU
per request. A token whose key id disappears at a JWKS refresh is forgotten with it."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import httpx
import jwt
from cachetools import TLRUCache
from fastapi import Depends, Request
from jwt import PyJWK

from shared.problems import Problem, forbidden, unauthenticated
from shared.settings import TokenSettings

ALGORITHM = "EdDSA"
ROLE_RANK = {"MEMBER": 0, "MODERATOR": 1, "PRODUCT_TEAM": 2, "ADMIN": 3}


@dataclass(frozen=True)
class Principal:
    id: uuid.UUID
    kind: str
    role: str
    # "read-write" for people; an integrator API key may be "read".
    scope: str = "read-write"
    token: str = ""

    def has_role(self, *roles: str) -> bool:
        return self.role in roles

    @property
    def is_staff(self) -> bool:
        """PRODUCT_TEAM and ADMIN see every idea and triage."""
        return self.role in ("PRODUCT_TEAM", "ADMIN")

    @property
    def is_moderator(self) -> bool:
        return self.role in ("MODERATOR", "PRODUCT_TEAM", "ADMIN")


class JwtVerifier:
    def __init__(
        self,
        *,
        jwks_url: str | None,
        public_key_pem: str | None = None,
        public_keys: dict[str, Any] | None = None,
        issuer: str,
        audience: str,
        min_refresh_interval: float = 5.0,
        cache_size: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._jwks_url = jwks_url
        self._issuer = issuer
        self._audience = audience
        self._keys: dict[str, Any] = dict(public_keys or {})
        self._static_key = None
        if public_key_pem:
            from cryptography.hazmat.primitives.serialization import load_pem_public_key

            self._static_key = load_pem_public_key(public_key_pem.encode())
        self._last_refresh = 0.0
        self._min_refresh_interval = min_refresh_interval
        self._lock = asyncio.Lock()
        # token -> (principal, exp, kid): tokens verified already, each until its exp
        self._verified: TLRUCache[str, tuple[Principal, float, str | None]] = TLRUCache(
            maxsize=cache_size, ttu=lambda _token, entry, _now: entry[1], timer=clock
        )

    async def _refresh(self) -> None:
        if self._jwks_url is None:
            return
        async with self._lock:
            if time.monotonic() - self._last_refresh < self._min_refresh_interval:
                return
            self._last_refresh = time.monotonic()
            jwks = None
            # Several stakeholder instances may be listed (comma-separated): the first that answers.
            async with httpx.AsyncClient(timeout=3.0) as client:
                for url in [u.strip() for u in self._jwks_url.split(",") if u.strip()]:
                    try:
                        response = await client.get(url)
                        response.raise_for_status()
                        jwks = response.json()
                        break
                    except (httpx.HTTPError, ValueError):
                        continue
            if jwks is None:
                if not self._keys:
                    raise Problem("UNAVAILABLE", "cannot fetch signing keys")
                return
            self._keys = {k["kid"]: PyJWK(k, algorithm=ALGORITHM).key for k in jwks.get("keys", [])}
            for token in list(self._verified):
                entry = self._verified.get(token)
                if entry is not None and entry[2] not in self._keys:
                    del self._verified[token]

    async def _key_for(self, kid: str | None) -> Any:
        if self._static_key is not None:
            return self._static_key
        if kid is None:
            raise unauthenticated("token has no key id")
        if kid not in self._keys:
            await self._refresh()
        if kid not in self._keys:
            if not self._keys and self._jwks_url is not None:
                raise Problem("UNAVAILABLE", "signing keys not available yet; retry")
            raise unauthenticated("token signed by an unknown key")
        return self._keys[kid]

    async def verify(self, token: str) -> Principal:
        cached = self._verified.get(token)
        if cached is not None:
            return cached[0]
        principal, exp, kid = await self._verify(token)
        self._verified[token] = (principal, exp, kid)
        return principal

    async def _verify(self, token: str) -> tuple[Principal, float, str | None]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise unauthenticated("malformed token") from exc
        if header.get("alg") != ALGORITHM:
            raise unauthenticated("unsupported token algorithm")
        key = await self._key_for(header.get("kid"))
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                issuer=self._issuer,
                audience=self._audience,
                options={"require": ["exp", "iat", "sub"]},
            )
            principal = Principal(
                id=uuid.UUID(claims["sub"]),
                kind=str(claims["kind"]),
                role=str(claims["role"]),
                scope=str(claims.get("scope", "read-write")),
                token=token,
            )
            return principal, float(claims["exp"]), header.get("kid")
        except jwt.ExpiredSignatureError as exc:
            raise unauthenticated("token expired") from exc
        except (jwt.PyJWTError, KeyError, ValueError) as exc:
            raise unauthenticated("invalid token") from exc


def verifier_from(settings: TokenSettings) -> JwtVerifier:
    return JwtVerifier(
        jwks_url=settings.jwks_url,
        public_key_pem=settings.jwt_public_key,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
    )


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthenticated("expected 'Authorization: Bearer <token>'")
    return token.strip()


async def optional_principal(request: Request) -> Principal | None:
    token = bearer_token(request.headers.get("authorization"))
    if token is None:
        return None
    verifier: JwtVerifier = request.app.state.jwt_verifier
    return await verifier.verify(token)


async def require_principal(principal: Annotated[Principal | None, Depends(optional_principal)]) -> Principal:
    if principal is None:
        raise unauthenticated()
    return principal


async def require_writer(principal: Annotated[Principal, Depends(require_principal)]) -> Principal:
    if principal.scope == "read":
        raise forbidden("this API key is read-only")
    return principal


OptionalPrincipal = Annotated[Principal | None, Depends(optional_principal)]
CurrentPrincipal = Annotated[Principal, Depends(require_principal)]
WriterPrincipal = Annotated[Principal, Depends(require_writer)]


class TokenIssuer:
    """Signs access tokens in the format `JwtVerifier` reads (used by the stakeholder service,
    and by tests with a key of their own)."""

    def __init__(self, private_key: Any, kid: str, *, issuer: str, audience: str, ttl_seconds: int) -> None:
        self._key = private_key
        self.kid = kid
        self._issuer = issuer
        self._audience = audience
        self._ttl = ttl_seconds

    def issue(
        self, stakeholder_id: uuid.UUID, kind: str, role: str, scope: str = "read-write", ttl: int | None = None
    ) -> str:
        now = int(time.time())
        claims = {
            "sub": str(stakeholder_id),
            "kind": kind,
            "role": role,
            "scope": scope,
            "iss": self._issuer,
            "aud": self._audience,
            "iat": now,
            "exp": now + (ttl if ttl is not None else self._ttl),
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self._key, algorithm=ALGORITHM, headers={"kid": self.kid})
