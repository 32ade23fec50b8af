"""Stakeholder use cases. Services add and flush; the request boundary commits."""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import uuid
from datetime import UTC, datetime
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from services.stakeholders import domain
from services.stakeholders.models import (
    ApiKey,
    ApiKeyCreate,
    ApiKeyPublic,
    ApiKeyWithSecret,
    AuthResponse,
    LoginFailure,
    SigningKey,
    Stakeholder,
    StakeholderCreate,
    StakeholderPublic,
    StakeholderUpdate,
)
from services.stakeholders.repository import KeyRepository, StakeholderRepository
from shared.auth import API_KEY_PREFIX, JwtVerifier, Principal, Scope, TokenIssuer
from shared.events.catalogue import CommentAdded, IdeaProposed, IdeaRefined, Role, StakeholderKind, VoteCast
from shared.events.failures import RetryLater
from shared.problems import Problem, conflict, not_found, unauthenticated
from shared.uow import UnitOfWork


def public(stakeholder: Stakeholder) -> StakeholderPublic:
    return StakeholderPublic.model_validate(stakeholder, from_attributes=True)


class Passwords:
    """argon2 password hashes at the costs the settings give (built in the app's lifespan, never
    at import). Hashing and checking run in a worker thread: they are CPU-bound by design."""

    def __init__(self, time_cost: int, memory_kib: int, parallelism: int) -> None:
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism)
        # Checked against when the e-mail is unknown, so both paths cost the same.
        self._dummy = self.hash_now("dummy-password-for-timing")

    def hash_now(self, password: str) -> str:
        return self._hasher.hash(password)

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def matches(self, password_hash: str | None, password: str) -> bool:
        """Whether `password` is the one `password_hash` was made from (None: an unknown account,
        checked against a dummy hash all the same)."""

        def verify() -> bool:
            try:
                return self._hasher.verify(password_hash or self._dummy, password) and password_hash is not None
            except (VerificationError, InvalidHashError):
                return False

        return await asyncio.to_thread(verify)


class Keyring:
    """The service's Ed25519 signing key(s), kept in its database so every replica signs with
    the same key; a key given in settings takes precedence."""

    def __init__(self, issuer: str, audience: str, ttl_seconds: int) -> None:
        self._issuer_name = issuer
        self._audience = audience
        self._ttl = ttl_seconds
        self._keys: list[tuple[str, Ed25519PrivateKey]] = []

    async def load(self, sessionmaker: async_sessionmaker[AsyncSession], configured_pem: str | None) -> None:
        if configured_pem:
            key = serialization.load_pem_private_key(configured_pem.encode(), password=None)
            if not isinstance(key, Ed25519PrivateKey):
                raise ValueError("JWT_PRIVATE_KEY must be an Ed25519 key")
            self._keys = [(_kid_of(key), key)]
            return
        async with sessionmaker() as session, session.begin():
            # Replicas starting together: one creates the key, the others wait and read it.
            await session.execute(text("SELECT pg_advisory_xact_lock(7331002)"))
            repo = KeyRepository(session)
            rows = await repo.signing_keys()
            if not rows:
                key = Ed25519PrivateKey.generate()
                pem = key.private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
                ).decode()
                await repo.add_signing_key(SigningKey(kid=_kid_of(key), private_pem=pem))
                rows = await repo.signing_keys()
        self._keys = []
        for row in rows:
            loaded = serialization.load_pem_private_key(row.private_pem.encode(), password=None)
            if not isinstance(loaded, Ed25519PrivateKey):
                raise ValueError(f"signing key {row.kid} in the database is not an Ed25519 key")
            self._keys.append((row.kid, loaded))

    @property
    def issuer(self) -> TokenIssuer:
        kid, key = self._keys[0]
        return TokenIssuer(key, kid, issuer=self._issuer_name, audience=self._audience, ttl_seconds=self._ttl)

    def verifier(self) -> JwtVerifier:
        """This service verifies its own tokens with its own keys (no JWKS round trip)."""
        return JwtVerifier(
            jwks_url=None,
            public_keys={kid: key.public_key() for kid, key in self._keys},
            issuer=self._issuer_name,
            audience=self._audience,
        )

    def jwks(self) -> dict[str, Any]:
        keys = []
        for kid, key in self._keys:
            jwk = json.loads(OKPAlgorithm.to_jwk(key.public_key()))
            keys.append({**jwk, "kid": kid, "use": "sig", "alg": "EdDSA"})
        return {"keys": keys}


def _kid_of(key: Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


class StakeholderService:
    def __init__(self, uow: UnitOfWork, keyring: Keyring, passwords: Passwords) -> None:
        self.uow = uow
        self.passwords = passwords
        self.repo = StakeholderRepository(uow.session)
        self.keys = KeyRepository(uow.session)
        self.keyring = keyring

    def _token_for(self, stakeholder: Stakeholder) -> str:
        return self.keyring.issuer.issue(stakeholder.id, StakeholderKind(stakeholder.kind), Role(stakeholder.role))

    async def register(self, data: StakeholderCreate, role: Role = Role.MEMBER) -> AuthResponse:
        email = domain.normalise_email(data.email)
        domain.check_password(data.password)
        stakeholder = Stakeholder(
            email=email,
            password_hash=await self.passwords.hash(data.password),
            display_name=domain.clean_display_name(data.display_name),
            kind=StakeholderKind(data.kind),
            organization=domain.clean_organization(data.organization),
            expertise=domain.clean_tags(data.expertise),
            role=role,
        )
        if await self.repo.by_email(email) is not None:
            raise conflict("an account with this email exists")
        try:
            await self.repo.add(stakeholder)
        except IntegrityError as exc:  # a concurrent registration won the race
            raise conflict("an account with this email exists") from exc
        event = domain.registered_event(
            stakeholder.id,
            stakeholder.display_name,
            stakeholder.kind,
            stakeholder.role,
            stakeholder.organization,
            stakeholder.expertise,
        )
        self.uow.emit(event, aggregate_version=stakeholder.event_version)
        return AuthResponse(token=self._token_for(stakeholder), stakeholder=public(stakeholder))

    async def login(self, email: str, password: str) -> AuthResponse | Problem:
        """A wrong password is *returned* as a Problem, not raised: the failure counter it
        updated must be committed by the request boundary."""
        try:
            email = domain.normalise_email(email)
        except Problem as exc:
            raise unauthenticated("wrong email or password") from exc
        now = datetime.now(UTC)
        row = await self.repo.failures(email)
        state = domain.ThrottleState(row.failures, row.first_failed_at, row.locked_until) if row else None
        wait = domain.retry_after(state, now)
        if wait is not None:
            raise Problem("RATE_LIMITED", "too many failed logins; try again later", retry_after=wait)
        stakeholder = await self.repo.by_email(email)
        ok = await self.passwords.matches(stakeholder.password_hash if stakeholder else None, password)
        if stakeholder is None or not ok:
            new_state = domain.after_failure(state, now)
            row = row or LoginFailure(email=email, first_failed_at=now)
            row.failures, row.first_failed_at, row.locked_until = (
                new_state.failures,
                new_state.first_failed_at,
                new_state.locked_until,
            )
            await self.repo.save_failures(row)
            return unauthenticated("wrong email or password")
        if row is not None:
            await self.repo.clear_failures(email)
        return AuthResponse(token=self._token_for(stakeholder), stakeholder=public(stakeholder))

    async def get(self, stakeholder_id: uuid.UUID) -> StakeholderPublic:
        stakeholder = await self.repo.get(stakeholder_id)
        if stakeholder is None:
            raise not_found("stakeholder")
        return public(stakeholder)

    async def get_many(self, ids: list[uuid.UUID]) -> list[StakeholderPublic]:
        return [public(s) for s in await self.repo.get_many(ids)]

    async def grant_role(self, principal: Principal, target_id: uuid.UUID, role: Role) -> StakeholderPublic:
        target = await self.repo.get(target_id)
        if target is None:
            raise not_found("stakeholder")
        event = domain.grant_role(target.id, Role(target.role), role, principal.id)
        target.role = role
        target.updated_at = datetime.now(UTC)
        target.event_version += 1
        await self.repo.add(target)
        self.uow.emit(event, aggregate_version=target.event_version)
        return public(target)

    async def update_profile(self, principal: Principal, data: StakeholderUpdate) -> StakeholderPublic:
        """A stakeholder edits their own display name, organization and expertise (their kind
        and role are not theirs to change)."""
        stakeholder = await self.repo.get(principal.id)
        if stakeholder is None:
            raise not_found("stakeholder")
        fields = data.model_dump(exclude_unset=True)
        if "display_name" in fields:
            stakeholder.display_name = domain.clean_display_name(data.display_name or "")
        if "organization" in fields:
            stakeholder.organization = domain.clean_organization(data.organization)
        if "expertise" in fields:
            stakeholder.expertise = domain.clean_tags(data.expertise)
        stakeholder.updated_at = datetime.now(UTC)
        stakeholder.event_version += 1
        await self.repo.add(stakeholder)
        event = domain.updated_event(
            stakeholder.id,
            stakeholder.display_name,
            StakeholderKind(stakeholder.kind),
            stakeholder.organization,
            list(stakeholder.expertise),
        )
        self.uow.emit(event, aggregate_version=stakeholder.event_version)
        return public(stakeholder)

    async def experts(self, tag: str, first: int) -> list[StakeholderPublic]:
        tag = domain.clean_expertise_filter(tag)
        return [public(s) for s in await self.repo.experts(tag, first)]

    async def ensure_admin(self, email: str, password: str) -> None:
        """The bootstrap ADMIN from settings: created once (an EMPLOYEE), never changed after."""
        email = domain.normalise_email(email)
        existing = await self.repo.by_email(email)
        if existing is not None:
            return
        await self.register(
            StakeholderCreate(
                email=email, password=password, display_name="Administrator", kind=StakeholderKind.EMPLOYEE
            ),
            role=Role.ADMIN,
        )

    # --- integrator API keys ------------------------------------------------------------
    async def create_api_key(self, principal: Principal, data: ApiKeyCreate) -> ApiKeyWithSecret:
        scope = domain.check_api_key_scope(data.scope)
        secret = API_KEY_PREFIX + secrets.token_urlsafe(32)
        label = domain.clean_api_key_label(data.label)
        key = ApiKey(label=label, scope=scope, owner_id=principal.id, secret_hash=_secret_hash(secret))
        await self.keys.add_api_key(key)
        return ApiKeyWithSecret(**ApiKeyPublic.model_validate(key, from_attributes=True).model_dump(), secret=secret)

    async def list_api_keys(self, principal: Principal) -> list[ApiKeyPublic]:
        return [ApiKeyPublic.model_validate(k, from_attributes=True) for k in await self.keys.api_keys_of(principal.id)]

    async def revoke_api_key(self, principal: Principal, key_id: uuid.UUID) -> bool:
        key = await self.keys.api_key(key_id)
        if key is None or (key.owner_id != principal.id and principal.role != Role.ADMIN):
            raise not_found("API key")
        if key.revoked_at is not None:
            return False
        key.revoked_at = datetime.now(UTC)
        await self.keys.add_api_key(key)
        return True

    async def token_for_api_key(self, secret: str) -> str:
        key = await self.keys.api_key_by_hash(_secret_hash(secret)) if secret.startswith(API_KEY_PREFIX) else None
        if key is None or key.revoked_at is not None:
            raise unauthenticated("unknown or revoked API key")
        owner = await self.repo.get(key.owner_id)
        if owner is None:
            raise unauthenticated("unknown or revoked API key")
        return self.keyring.issuer.issue(
            owner.id, StakeholderKind(owner.kind), Role(owner.role), scope=Scope(key.scope), ttl=300, api_key_id=key.id
        )


class ExpertiseService:
    """The experts projection: activity per stakeholder per idea, and each idea's tags, from the
    ideas, votes and comments streams (event handlers). Experts are ranked by their activity on the
    ideas that have a tag now, so the ranking does not depend on whether a vote or the idea's
    refinement was handled first. The IDEAS stream is VERSIONED: the consumer runner applies only
    the newest event per idea; anything about an idea not known yet waits for its proposal."""

    def __init__(self, uow: UnitOfWork) -> None:
        self.repo = StakeholderRepository(uow.session)

    async def idea_proposed(self, event: IdeaProposed) -> None:
        await self.repo.set_idea_tags(event.idea_id, event.tags)
        await self._credit_on_idea(event.idea_id, event.author_id, domain.IDEA_WEIGHT)

    async def idea_refined(self, event: IdeaRefined) -> None:
        if not await self.repo.update_idea_tags(event.idea_id, event.tags):
            raise RetryLater(f"idea {event.idea_id} not known yet")

    async def vote_cast(self, event: VoteCast) -> None:
        await self._credit_on_idea(event.idea_id, event.voter_id, domain.VOTE_WEIGHT)

    async def comment_added(self, event: CommentAdded) -> None:
        await self._credit_on_idea(event.idea_id, event.author_id, domain.COMMENT_WEIGHT)

    async def _credit_on_idea(self, idea_id: uuid.UUID, stakeholder_id: uuid.UUID, weight: int) -> None:
        if not await self.repo.credit_on_idea(stakeholder_id, idea_id, weight):
            raise RetryLater(f"idea {idea_id} not known yet")


def _secret_hash(secret: str) -> str:
    # API keys are long random secrets: a fast hash is enough (no dictionary to attack).
    return hashlib.sha256(secret.encode()).hexdigest()
