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
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any

import httpx
import jwt
from cachetools import TLRUCache
from fastapi import Depends, Request
from jwt import PyJWK

from shared.events.catalogue import Role, StakeholderKind
from shared.problems import Problem, forbidden, unauthenticated
from shared.settings import TokenSettings

ALGORITHM = "EdDSA"
# Integrator API keys are bearer secrets with this prefix; anything else with two dots is a JWT.
API_KEY_PREFIX = "ccp_"

# PRODUCT_TEAM and ADMIN: see every idea, triage, answer officially.
STAFF_ROLES = frozenset({Role.PRODUCT_TEAM, Role.ADMIN})
# ...and MODERATOR: hide comments, read hidden bodies and flags.
MODERATOR_ROLES = STAFF_ROLES | {Role.MODERATOR}


class Scope(StrEnum):
    """What a token may do: people's tokens READ_WRITE; an integrator API key READ or READ_WRITE."""

    READ = "read"
    READ_WRITE = "read-write"


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller, as every service and the gateway see it: from a verified access token."""

    id: uuid.UUID
    kind: StakeholderKind
    role: Role
    scope: Scope = Scope.READ_WRITE
    token: str = field(default="", repr=False)
    # The token's origin: None for a session (register/login), else the API key it was made from.
    api_key_id: uuid.UUID | None = None

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES

    @property
    def is_moderator(self) -> bool:
        return self.role in MODERATOR_ROLES

    @property
    def can_write(self) -> bool:
        return self.scope is Scope.READ_WRITE

    @property
    def via_api_key(self) -> bool:
        return self.api_key_id is not None


def parse_bearer(value: object) -> str | None:
    """The token of an `Authorization: Bearer <token>` value; None when there is none."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise unauthenticated("expected 'Authorization: Bearer <token>'")
    scheme, _, token = value.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise unauthenticated("expected 'Authorization: Bearer <token>'")
    return token


def looks_like_jwt(token: str) -> bool:
    return not token.startswith(API_KEY_PREFIX) and token.count(".") == 2


def _claims_principal(claims: dict[str, Any], token: str) -> Principal:
    """The principal a signed token names. A signature we made over claims that name no known
    kind, role or scope authenticates nobody we can serve: FORBIDDEN, not a bad token."""
    try:
        kind = StakeholderKind(claims["kind"])
        role = Role(claims["role"])
        scope = Scope(claims.get("scope", Scope.READ_WRITE))
    except ValueError:
        raise forbidden("the token carries no valid stakeholder kind, role or scope") from None
    key = claims.get("key")
    return Principal(
        id=uuid.UUID(claims["sub"]),
        kind=kind,
        role=role,
        scope=scope,
        token=token,
        api_key_id=uuid.UUID(key) if key is not None else None,
    )


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
            principal = _claims_principal(claims, token)
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


async def optional_principal(request: Request) -> Principal | None:
    token = parse_bearer(request.headers.get("authorization"))
    if token is None:
        return None
    verifier: JwtVerifier = request.app.state.jwt_verifier
    return await verifier.verify(token)


async def require_principal(principal: Annotated[Principal | None, Depends(optional_principal)]) -> Principal:
    if principal is None:
        raise unauthenticated()
    return principal


@dataclass(frozen=True)
class Requirement:
    """What a route asks of its caller, declared once in its signature as a dependency, checked
    in the contract's order: authenticated, a token that may write, a session rather than an
    API key, then the role. Rules that depend on the object (the author, or staff) are domain
    rules, checked after visibility: an object the caller may not see must read as missing."""

    write: bool = False
    session: bool = False
    roles: frozenset[Role] | None = None

    def check(self, principal: Principal) -> Principal:
        if self.write and not principal.can_write:
            raise forbidden("this API key is read-only")
        if self.session and principal.via_api_key:
            raise forbidden("API keys are managed with a login token, not with an API key")
        if self.roles is not None and principal.role not in self.roles:
            raise forbidden(f"only {' or '.join(sorted(self.roles))} may do this")
        return principal

    async def __call__(self, principal: Annotated[Principal, Depends(require_principal)]) -> Principal:
        return self.check(principal)


WRITER = Requirement(write=True)
SESSION_WRITER = Requirement(write=True, session=True)
ADMIN_WRITER = Requirement(write=True, roles=frozenset({Role.ADMIN}))

OptionalPrincipal = Annotated[Principal | None, Depends(optional_principal)]
CurrentPrincipal = Annotated[Principal, Depends(require_principal)]
WriterPrincipal = Annotated[Principal, Depends(WRITER)]
# Managing API keys: never with a token made from an API key (a leaked key must not mint more).
SessionWriterPrincipal = Annotated[Principal, Depends(SESSION_WRITER)]
AdminPrincipal = Annotated[Principal, Depends(ADMIN_WRITER)]


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
        self,
        stakeholder_id: uuid.UUID,
        kind: StakeholderKind,
        role: Role,
        scope: Scope = Scope.READ_WRITE,
        ttl: int | None = None,
        api_key_id: uuid.UUID | None = None,
    ) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "sub": str(stakeholder_id),
            "kind": str(kind),
            "role": str(role),
            "scope": str(scope),
            "iss": self._issuer,
            "aud": self._audience,
            "iat": now,
            "exp": now + (ttl if ttl is not None else self._ttl),
            "jti": uuid.uuid4().hex,
        }
        if api_key_id is not None:
            claims["key"] = str(api_key_id)
        return jwt.encode(claims, self._key, algorithm=ALGORITHM, headers={"kid": self.kid})
