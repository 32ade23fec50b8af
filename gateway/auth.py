"""Who is calling: bearer tokens to `shared.auth.Principal`.

A JWT (from register/login, or one the gateway got for an API key) is verified locally with
`shared.auth.JwtVerifier` (EdDSA, JWKS from the stakeholder service). Any other bearer token is
treated as an integrator API key (they start with "ccp_"): it is exchanged at the stakeholder
service (`POST /auth/api-key-token`) for a short-lived JWT, cached briefly per key."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Protocol

from cachetools import TLRUCache

from shared.auth import Principal, looks_like_jwt
from shared.problems import Problem


class TokenVerifier(Protocol):
    async def verify(self, token: str) -> Principal: ...


class ApiKeyExchanger(Protocol):
    async def exchange_api_key(self, key: str) -> str: ...


class Authenticator:
    def __init__(
        self,
        verifier: TokenVerifier,
        exchanger: ApiKeyExchanger,
        *,
        api_key_ttl: float = 30.0,
        cache_size: int = 10_000,
    ) -> None:
        self._verifier = verifier
        self._exchanger = exchanger
        # sha256(api key) -> JWT, used for api_key_ttl seconds
        self._tokens: TLRUCache[str, str] = TLRUCache(
            maxsize=cache_size, ttu=lambda _key, _token, now: now + api_key_ttl
        )
        self._inflight: dict[str, asyncio.Future[str]] = {}

    async def authenticate(self, credential: str) -> Principal:
        """The principal behind a bearer token; UNAUTHENTICATED when it is not valid."""
        if len(credential) > 8192:
            raise Problem("UNAUTHENTICATED", "invalid token")
        if looks_like_jwt(credential):
            return await self._verifier.verify(credential)
        jwt_token = await self._token_for_api_key(credential)
        try:
            return await self._verifier.verify(jwt_token)
        except Problem:
            self._tokens.pop(_key(credential), None)
            raise

    def forget_api_keys(self) -> None:
        """Drop every cached exchange (after a key is revoked through this gateway)."""
        self._tokens.clear()

    async def _token_for_api_key(self, key: str) -> str:
        cache_key = _key(key)
        cached = self._tokens.get(cache_key)
        if cached is not None:
            return cached
        # One exchange at a time per key, however many requests arrive together.
        if (pending := self._inflight.get(cache_key)) is not None:
            try:
                return await asyncio.shield(pending)
            except asyncio.CancelledError:
                if not pending.cancelled():
                    raise  # we are the ones being cancelled
            # the exchanging request was cancelled: exchange ourselves
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._inflight[cache_key] = future
        try:
            token = await self._exchanger.exchange_api_key(key)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning when nobody waits
            raise
        finally:
            if self._inflight.get(cache_key) is future:
                del self._inflight[cache_key]
        future.set_result(token)
        self._tokens[cache_key] = token
        return token


def _key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()
