"""The per-request context: who is calling, and a fresh set of DataLoaders.

Every DataLoader batches the keys asked for in one tick into one upstream call, with the
caller's token, so a page of ideas with author, myVote and first comments costs a constant
number of calls whatever the page size. Visibility stays with the services: ideas and comments
that the caller may not see are left out of their batches and load as None."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar

from strawberry.dataloader import DataLoader

from gateway.auth import Authenticator
from gateway.clients import Services
from gateway.live import LiveHub
from gateway.ratelimit import RateLimiter
from gateway.settings import GatewaySettings
from gateway.stakeholder_cache import StakeholderCache
from shared.auth import WRITER, Principal, Requirement, parse_bearer
from shared.contracts.comments import CommentPublic
from shared.contracts.ideas import IdeaPublic, IdeaRevisionPublic
from shared.contracts.stakeholders import StakeholderPublic
from shared.contracts.votes import VotePublic
from shared.ids import parse_uuid
from shared.pagination import Page
from shared.problems import Problem

MAX_BATCH = 100
EMPTY_PAGE: Page[CommentPublic] = Page(items=[], cursors=[], total_count=0, has_next_page=False, end_cursor=None)


@dataclass
class Runtime:
    """What the running gateway holds; built once in the app's lifespan."""

    settings: GatewaySettings
    services: Services
    authenticator: Authenticator
    hub: LiveHub
    mutation_limiter: RateLimiter
    anonymous_limiter: RateLimiter
    stakeholder_cache: StakeholderCache = field(default_factory=StakeholderCache)


K = TypeVar("K")
V = TypeVar("V")
T = TypeVar("T")


def ready_or_later(loader: DataLoader[K, V], key: K, make: Callable[[V], T]) -> T | Awaitable[T]:
    """`make(value)` at once when this request has loaded `key` already (a page of ideas
    prefetches its authors and the caller's votes), else an awaitable. A field resolver that
    returns a plain value lets graphql-core complete a whole list without creating a task per
    item; that was a large part of the gateway's CPU per page."""
    future = loader.cache_map.get(key)
    if future is not None and future.done() and not future.cancelled() and future.exception() is None:
        return make(future.result())

    async def later() -> T:
        return make(await loader.load(key))

    return later()


class Loaders:
    """A fresh set per request (and per subscription event); each DataLoader is built on first
    use (most requests need one or two of them). Values are the services' public models."""

    def __init__(
        self,
        services: Services,
        token: Callable[[], Awaitable[str | None]],
        stakeholder_cache: StakeholderCache,
    ) -> None:
        self._services = services
        self._token = token
        self._stakeholder_cache = stakeholder_cache

    @cached_property
    def stakeholders(self) -> DataLoader[uuid.UUID, StakeholderPublic | None]:
        return DataLoader(self._load_stakeholders, max_batch_size=MAX_BATCH)

    @cached_property
    def ideas(self) -> DataLoader[uuid.UUID, IdeaPublic | None]:
        return DataLoader(self._load_ideas, max_batch_size=MAX_BATCH)

    @cached_property
    def my_votes(self) -> DataLoader[uuid.UUID, VotePublic | None]:
        return DataLoader(self._load_my_votes, max_batch_size=MAX_BATCH)

    @cached_property
    def comment_pages(self) -> DataLoader[tuple[uuid.UUID, int], Page[CommentPublic]]:
        return DataLoader(self._load_comment_pages, max_batch_size=MAX_BATCH)

    @cached_property
    def comments(self) -> DataLoader[uuid.UUID, CommentPublic | None]:
        return DataLoader(self._load_comments, max_batch_size=MAX_BATCH)

    @cached_property
    def revisions(self) -> DataLoader[uuid.UUID, list[IdeaRevisionPublic]]:
        return DataLoader(self._load_revisions, max_batch_size=MAX_BATCH)

    # priming: objects that arrive with a page or a mutation answer need no second read
    def prime_ideas(self, items: Sequence[IdeaPublic], *, force: bool = False) -> None:
        self.ideas.prime_many({item.id: item for item in items}, force=force)

    def prime_stakeholders(self, items: Sequence[StakeholderPublic]) -> None:
        self.stakeholders.prime_many({item.id: item for item in items})

    def prime_comments(self, items: Sequence[CommentPublic], *, force: bool = False) -> None:
        self.comments.prime_many({item.id: item for item in items}, force=force)

    def forget_idea(self, idea_id: uuid.UUID) -> None:
        """Drop a cached idea (after a write changed it); nothing to do when it was never loaded
        (strawberry's DataLoader.clear raises KeyError for a key it has not cached)."""
        with suppress(KeyError):
            self.ideas.clear(idea_id)

    def stakeholder_changed(self, stakeholder: StakeholderPublic) -> None:
        """This request changed the stakeholder: its answer for this request, and no cached
        copy for the next ones."""
        self._stakeholder_cache.forget(stakeholder.id)
        self.stakeholders.prime(stakeholder.id, stakeholder, force=True)

    async def _load_stakeholders(self, ids: list[uuid.UUID]) -> list[StakeholderPublic | None]:
        cache = self._stakeholder_cache
        found = cache.get_many(ids)
        missing = [i for i in ids if i not in found]
        if missing:
            generation = cache.generation
            fetched = {item.id: item for item in await self._services.stakeholders.batch(missing, await self._token())}
            cache.put_many(fetched, read_at_generation=generation)
            found.update(fetched)
        return [found.get(i) for i in ids]

    async def _load_ideas(self, ids: list[uuid.UUID]) -> list[IdeaPublic | None]:
        by_id = {item.id: item for item in await self._services.ideas.batch(ids, await self._token())}
        return [by_id.get(i) for i in ids]

    async def _load_my_votes(self, idea_ids: list[uuid.UUID]) -> list[VotePublic | None]:
        token = await self._token()
        if token is None:
            return [None] * len(idea_ids)
        by_idea = {item.idea_id: item for item in await self._services.votes.mine(idea_ids, token)}
        return [by_idea.get(i) for i in idea_ids]

    async def _load_comment_pages(self, keys: list[tuple[uuid.UUID, int]]) -> list[Page[CommentPublic]]:
        token = await self._token()
        by_first: dict[int, list[uuid.UUID]] = defaultdict(list)
        for idea_id, first in keys:
            if idea_id not in by_first[first]:
                by_first[first].append(idea_id)
        firsts = list(by_first)
        answers = await asyncio.gather(
            *(self._services.comments.by_ideas(by_first[first], first, token) for first in firsts)
        )
        pages: dict[tuple[uuid.UUID, int], Page[CommentPublic]] = {}
        for first, answer in zip(firsts, answers, strict=True):
            for raw_id, page in answer.items():
                page_idea = parse_uuid(raw_id)
                if page_idea is not None:
                    pages[(page_idea, first)] = page
                    self.prime_comments(page.items)
        return [pages.get(key, EMPTY_PAGE) for key in keys]

    async def _load_comments(self, ids: list[uuid.UUID]) -> list[CommentPublic | None]:
        # The comments service leaves out the comments on ideas the caller may not see.
        by_id = {item.id: item for item in await self._services.comments.batch(ids, await self._token())}
        return [by_id.get(i) for i in ids]

    async def _load_revisions(self, idea_ids: list[uuid.UUID]) -> list[list[IdeaRevisionPublic] | BaseException]:
        # No batch endpoint: one call per idea, all at once.
        token = await self._token()
        answers = await asyncio.gather(
            *(self._services.ideas.revisions(i, token) for i in idea_ids), return_exceptions=True
        )
        return list(answers)


class GatewayContext:
    """Typed context of one GraphQL request (HTTP) or one WebSocket connection."""

    def __init__(
        self,
        runtime: Runtime,
        *,
        authorization: str | None = None,
        client_address: str | None = None,
        request: Any = None,
        response: Any = None,
        websocket: bool = False,
    ) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.services = runtime.services
        self.hub = runtime.hub
        self.request = request
        self.response = response
        self.websocket = websocket
        self.client_address = client_address or "unknown"
        # Set by strawberry's graphql-transport-ws handler from the connection_init payload.
        self.connection_params: dict[str, Any] | None = None
        self._authorization = authorization
        self._principal: Principal | None = None
        self._auth_error: Problem | None = None
        self._resolved = False
        self._lock = asyncio.Lock()
        self.reset_loaders()

    # --- auth ---------------------------------------------------------------------------------
    def set_authorization(self, authorization: str | None) -> None:
        self._authorization = authorization
        self.forget_principal()

    def forget_principal(self) -> None:
        """Authenticate again on next use (subscriptions: the token may have expired)."""
        self._resolved = False
        self._principal = None
        self._auth_error = None

    async def principal(self) -> Principal | None:
        """The caller; None when anonymous; UNAUTHENTICATED when the token is not valid."""
        if not self._resolved:
            async with self._lock:
                if not self._resolved:
                    try:
                        credential = parse_bearer(self._authorization)
                        if credential is not None:
                            self._principal = await self.runtime.authenticator.authenticate(credential)
                    except Problem as problem:
                        if problem.code != "UNAUTHENTICATED":
                            raise  # e.g. signing keys unavailable: try again next time
                        self._auth_error = problem
                    self._resolved = True
        if self._auth_error is not None:
            raise Problem(self._auth_error.code, self._auth_error.detail)
        return self._principal

    async def token(self) -> str | None:
        principal = await self.principal()
        return principal.token if principal is not None else None

    async def require_principal(self) -> Principal:
        principal = await self.principal()
        if principal is None:
            raise Problem("UNAUTHENTICATED", "authentication required")
        return principal

    async def require(self, requirement: Requirement = WRITER) -> Principal:
        """For every mutation but register/login: the mutation's requirement on its caller (a token
        with write scope, by default), within the per-stakeholder rate limit."""
        principal = requirement.check(await self.require_principal())
        self.runtime.mutation_limiter.check(str(principal.id))
        return principal

    def check_anonymous_rate(self) -> None:
        self.runtime.anonymous_limiter.check(self.client_address)

    # --- loaders ------------------------------------------------------------------------------
    def reset_loaders(self) -> None:
        """Fresh per-request caches (the request itself, each operation on a WebSocket, each
        subscription event)."""
        self.loaders = Loaders(self.services, self.token, self.runtime.stakeholder_cache)
