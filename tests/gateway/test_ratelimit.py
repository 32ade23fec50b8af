"""The gateway's rate limits (gateway/ratelimit.py, the `limits` library's moving window): burst
and window, the retry hint, keys apart, each replica's share, the storage URI, a store that is
down, and how gateway/main.py builds both limiters from the settings.

The clock: `limits`' memory storage reads `time.time()` of its module; the tests that move time
replace that module's `time` (and gateway.ratelimit's) with a clock they set."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import limits.storage.memory
import pytest
from limits.errors import ConfigurationError
from limits.storage import MemoryStorage, RedisStorage
from pydantic import ValidationError

import gateway.ratelimit
from gateway.main import create_app
from gateway.ratelimit import RateLimiter, window_seconds
from gateway.settings import GatewaySettings
from shared.problems import Problem


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.25

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(limits.storage.memory, "time", c)
    monkeypatch.setattr(gateway.ratelimit, "time", c)
    return c


def outcomes(limiter: RateLimiter, key: str, n: int) -> list[int]:
    """0 for an allowed call, else its retry_after."""
    result = []
    for _ in range(n):
        try:
            limiter.check(key)
            result.append(0)
        except Problem as problem:
            assert problem.code == "RATE_LIMITED" and problem.status == 429
            result.append(problem.extra["retry_after"])
    return result


def test_the_burst_passes_then_rate_limited_with_a_whole_second_hint() -> None:
    limiter = RateLimiter(0.01, 3)
    assert (limiter.amount, limiter.window) == (3, 300)
    assert outcomes(limiter, "ada", 3) == [0, 0, 0]
    with pytest.raises(Problem) as refused:
        limiter.check("ada")
    retry_after = refused.value.extra["retry_after"]
    assert isinstance(retry_after, int) and 298 <= retry_after <= 300
    assert outcomes(limiter, "grace", 3) == [0, 0, 0], "another key has its own count"


def test_the_window_is_burst_over_rate_in_whole_seconds() -> None:
    assert window_seconds(10.0, 120) == 12
    assert window_seconds(5.0, 100) == 20
    assert window_seconds(7.0, 120) == 18  # 17.1 s, rounded up: never looser than the setting
    assert window_seconds(100_000.0, 100_000) == 1
    assert window_seconds(1000.0, 1) == 1
    for rate, burst in ((0.0, 10), (-1.0, 10), (1.0, 0)):
        with pytest.raises(ValueError):
            window_seconds(rate, burst)


def test_each_hit_leaves_the_window_one_window_after_it_counted(clock: Clock) -> None:
    limiter = RateLimiter(1.0, 3)  # at most 3 in any 3 s
    assert outcomes(limiter, "k", 2) == [0, 0]
    clock.sleep(1.0)
    assert outcomes(limiter, "k", 2) == [0, 2], "3 in the window; the oldest leaves 2 s later"
    clock.sleep(1.5)
    assert outcomes(limiter, "k", 1) == [1], "still 3 in the last 3 s"
    clock.sleep(0.6)  # t = 3.1: the two first hits have left
    assert outcomes(limiter, "k", 3) == [0, 0, 1]
    # The long-run rate: from a clean slate, a call every 1.01 s always passes, one every 0.9 s
    # does not (4 would fall within 3 s).
    clock.sleep(10)
    for _ in range(20):
        assert outcomes(limiter, "k", 1) == [0]
        clock.sleep(1.01)
    clock.sleep(10)
    seen = []
    for _ in range(4):
        seen += outcomes(limiter, "k", 1)
        clock.sleep(0.9)
    assert seen == [0, 0, 0, 1]


def test_a_burst_spent_at_once_comes_back_at_once(clock: Clock) -> None:
    limiter = RateLimiter(10.0, 120)
    assert outcomes(limiter, "k", 121) == [0] * 120 + [12]
    clock.sleep(11.9)
    assert outcomes(limiter, "k", 1) == [1]
    clock.sleep(0.2)
    assert outcomes(limiter, "k", 121) == [0] * 120 + [12]


def test_replicas_each_enforce_their_share_and_together_the_limit(clock: Clock) -> None:
    """Two replicas behind a load balancer that alternates a client's calls: 120 pass in all,
    not 240."""
    replicas = [RateLimiter(10.0, 120, replicas=2) for _ in range(2)]
    assert [(r.amount, r.window) for r in replicas] == [(60, 12), (60, 12)]
    passed = 0
    for i in range(400):
        try:
            replicas[i % 2].check("client")
            passed += 1
        except Problem:
            pass
    assert passed == 120
    assert RateLimiter(10.0, 5, replicas=8).amount == 1, "a share is never below one call"


def test_limiters_are_apart_even_on_one_store() -> None:
    mutations = RateLimiter(0.01, 1, name="mutations")
    anonymous = RateLimiter(0.01, 1, name="anonymous")
    assert mutations.item.key_for("k") != anonymous.item.key_for("k")
    assert outcomes(mutations, "k", 2)[0] == 0 and outcomes(anonymous, "k", 1) == [0]


def test_the_storage_uri_picks_the_store() -> None:
    assert isinstance(RateLimiter(1.0, 1).storage, MemoryStorage)
    assert isinstance(RateLimiter(1.0, 1, storage_uri="memory://").storage, MemoryStorage)
    redis = RateLimiter(1.0, 1, storage_uri="redis://127.0.0.1:6379/0").storage
    assert isinstance(redis, RedisStorage)  # nothing connects before the first check
    with pytest.raises(ConfigurationError):
        RateLimiter(1.0, 1, storage_uri="nosuchstore://x")
    with pytest.raises(ValueError, match="asynchronous"):
        RateLimiter(1.0, 1, storage_uri="async+memory://")


def test_a_shared_store_takes_the_whole_limit_not_a_share() -> None:
    with pytest.raises(ValueError, match="replicas=1"):
        RateLimiter(10.0, 120, replicas=2, storage_uri="redis://127.0.0.1:6379/0")
    shared = RateLimiter(10.0, 120, storage_uri="redis://127.0.0.1:6379/0")
    assert shared.amount == 120
    with pytest.raises(ValidationError, match="RATE_LIMIT_REPLICAS"):
        GatewaySettings(rate_limit_replicas=2, rate_limit_storage_uri="redis://redis:6379/0")
    assert GatewaySettings(rate_limit_replicas=3).rate_limit_replicas == 3


def test_settings_defaults_and_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = GatewaySettings()
    assert (defaults.rate_limit_replicas, defaults.rate_limit_storage_uri) == (1, "memory://")
    assert (defaults.mutation_burst, defaults.mutation_rate_per_second) == (120, 10.0)
    assert (defaults.anonymous_mutation_burst, defaults.anonymous_mutation_rate_per_second) == (100, 5.0)
    monkeypatch.setenv("RATE_LIMIT_REPLICAS", "4")
    monkeypatch.setenv("RATE_LIMIT_STORAGE_URI", "memory://")
    assert GatewaySettings().rate_limit_replicas == 4
    for field in ("mutation_rate_per_second", "anonymous_mutation_rate_per_second"):
        with pytest.raises(ValidationError):
            GatewaySettings(**{field: 0})
    for field in ("mutation_burst", "anonymous_mutation_burst", "rate_limit_replicas"):
        with pytest.raises(ValidationError):
            GatewaySettings(**{field: 0})


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    yield port


def test_an_unreachable_store_lets_calls_through_and_is_left_alone_a_while(closed_port: int) -> None:
    limiter = RateLimiter(0.01, 1, storage_uri=f"redis://127.0.0.1:{closed_port}/0")
    asked = 0
    hit = limiter._limiter.hit

    def counting_hit(*args: object, **kwargs: object) -> bool:
        nonlocal asked
        asked += 1
        return hit(*args, **kwargs)  # type: ignore[arg-type]

    limiter._limiter.hit = counting_hit  # type: ignore[method-assign]
    start = time.monotonic()
    assert outcomes(limiter, "k", 5) == [0] * 5, "the limit of 1 is not enforced without its store"
    assert time.monotonic() - start < 2, "bounded: no retries with back-off on the event loop"
    assert asked == 1, "after a failure the store is not asked again for a few seconds"
    limiter._paused_until = time.monotonic() - 1
    assert outcomes(limiter, "k", 1) == [0] and asked == 2


async def test_main_builds_both_limiters_from_the_settings() -> None:
    settings = GatewaySettings(
        mutation_burst=30,
        mutation_rate_per_second=2.0,
        anonymous_mutation_burst=9,
        anonymous_mutation_rate_per_second=0.5,
        rate_limit_replicas=3,
        rate_limit_storage_uri="memory://",
    )
    app = create_app(settings, connect_nats=False)
    async with app.router.lifespan_context(app):
        runtime = app.state.runtime
        mutations, anonymous = runtime.mutation_limiter, runtime.anonymous_limiter
    assert (mutations.amount, mutations.window) == (10, 15)
    assert (anonymous.amount, anonymous.window) == (3, 18)
    assert mutations.item.namespace != anonymous.item.namespace
    assert isinstance(mutations.storage, MemoryStorage)
