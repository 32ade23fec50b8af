"""The gateway's rate limits, counted by the `limits` library: per stakeholder for mutations, per
client address for register/login (gateway/context.py calls `check(key)`).

A limit of `burst` and `rate_per_second` is a moving window: at most `burst` hits in any
`burst / rate_per_second` seconds (rounded up to whole seconds, the library's unit). A fresh
key may spend the whole burst at once; in the long run that allows `rate_per_second`; a hit
refused says when the oldest hit in the window leaves it (`retry_after`, whole seconds, >= 1).

Where the counts live is the storage URI (`limits`' own syntax): `memory://` (the default)
counts in this process, so each of n gateway replicas behind one load balancer sees about 1/n
of a client's calls and enforces 1/n of the burst (`replicas=n`); a shared store such as
`redis://host:6379` counts for every replica together, so the whole limit applies there. Calls
to a shared store are synchronous (on the event loop, one round trip per checked mutation):
they get short timeouts and no retries unless the URI sets its own, and a store that fails is
not asked again for a few seconds. While it is unreachable the limits let calls through (logged):
losing the store must not refuse every mutation of the platform."""

from __future__ import annotations

import math
import time
from urllib.parse import urlsplit

from limits import RateLimitItemPerSecond
from limits.errors import StorageError
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from shared.logs import get_logger
from shared.problems import Problem

# After a failure of the store, calls pass without asking it for this long.
STORE_PAUSE_SECONDS = 5.0
# A Redis store is asked on the event loop: each round trip bounded, no retry (a URI's own query
# options, e.g. `?socket_timeout=1`, win).
REDIS_TIMEOUT_SECONDS = 0.2


def window_seconds(rate_per_second: float, burst: int) -> int:
    """The moving window in which at most `burst` hits count: burst / rate, whole seconds."""
    if rate_per_second <= 0 or burst < 1:
        raise ValueError("a rate limit needs rate_per_second > 0 and burst >= 1")
    return max(1, math.ceil(burst / rate_per_second))


def open_storage(uri: str) -> Storage:
    """The `limits` storage of a URI: `memory://`, `redis://host:port`, `rediss://...`,
    `redis+sentinel://...`, `redis+cluster://...` (the redis client ships in the image)."""
    options: dict[str, object] = {}
    if urlsplit(uri).scheme.startswith("redis"):
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        options = {
            "socket_timeout": REDIS_TIMEOUT_SECONDS,
            "socket_connect_timeout": REDIS_TIMEOUT_SECONDS,
            "retry": Retry(NoBackoff(), 0),
        }
    storage = storage_from_string(uri, wrap_exceptions=True, **options)  # type: ignore[arg-type]
    if not isinstance(storage, Storage):
        raise ValueError(f"{uri}: an asynchronous storage; the gateway's limits use synchronous ones")
    return storage


class RateLimiter:
    """One limit (`burst` per `burst / rate_per_second` seconds) per key."""

    def __init__(
        self,
        rate_per_second: float,
        burst: int,
        *,
        name: str = "gateway",
        replicas: int = 1,
        storage_uri: str = "memory://",
    ) -> None:
        if replicas < 1:
            raise ValueError("replicas >= 1")
        self.storage = open_storage(storage_uri)
        shared = not isinstance(self.storage, MemoryStorage)
        if shared and replicas > 1:
            raise ValueError(f"{storage_uri} is shared by every replica: the whole limit applies there, replicas=1")
        self.rate = rate_per_second
        self.burst = burst
        self.replicas = replicas
        # This process's share: the replicas' shares add up to the limit (never below one hit).
        self.item = RateLimitItemPerSecond(
            max(1, burst // replicas), window_seconds(rate_per_second, burst), namespace=f"ratelimit-{name}"
        )
        self._limiter = MovingWindowRateLimiter(self.storage)
        self._paused_until = 0.0
        self._log = get_logger("gateway.ratelimit")

    @property
    def window(self) -> int:
        return self.item.get_expiry()

    @property
    def amount(self) -> int:
        return self.item.amount

    def retry_after(self, key: str) -> float:
        """Count one hit for `key`; 0 when allowed, else seconds until one would be."""
        if self._paused_until and time.monotonic() < self._paused_until:
            return 0.0
        try:
            if self._limiter.hit(self.item, key):
                return 0.0
            reset = self._limiter.get_window_stats(self.item, key).reset_time
        except StorageError as exc:
            self._paused_until = time.monotonic() + STORE_PAUSE_SECONDS
            self._log.warning(
                "rate_limit_store_unavailable", error=repr(exc.storage_error), pause_seconds=STORE_PAUSE_SECONDS
            )
            return 0.0
        return max(reset - time.time(), 0.001)

    def check(self, key: str) -> None:
        wait = self.retry_after(key)
        if wait > 0:
            raise Problem("RATE_LIMITED", "too many requests, slow down", retry_after=max(1, math.ceil(wait)))
