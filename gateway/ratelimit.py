"""In-process token buckets: per stakeholder for mutations, per client address for register/login.

Each gateway replica limits on its own (the limit a client sees grows with the replica count);
good enough as a first line, the services keep their own limits."""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable

from shared.problems import Problem


class RateLimiter:
    def __init__(
        self,
        rate_per_second: float,
        burst: int,
        *,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate_per_second
        self.burst = float(burst)
        self.max_keys = max_keys
        self._clock = clock
        # key -> (tokens left, when they were counted)
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def retry_after(self, key: str, cost: float = 1.0) -> float:
        """Take `cost` tokens for `key`; 0 when allowed, else seconds until it would be."""
        now = self._clock()
        tokens, last = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens >= cost:
            self._buckets[key] = (tokens - cost, now)
            self._buckets.move_to_end(key)
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (cost - tokens) / self.rate if self.rate > 0 else 60.0

    def check(self, key: str) -> None:
        wait = self.retry_after(key)
        if wait > 0:
            raise Problem("RATE_LIMITED", "too many requests, slow down", retry_after=max(1, math.ceil(wait)))
