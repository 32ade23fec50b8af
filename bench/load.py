"""Load generators: bounded async loops (closed and paced), latency recording with percentiles,
and a small GraphQL-over-HTTP client (one keep-alive connection per client).

Every loop is bounded twice: by a duration and by a request count, and every request by a
timeout, so no phase can run away."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from shared.http import AiohttpTransport

# A request that takes longer than this is an error (the gateway's own upstream timeout is 5 s).
REQUEST_TIMEOUT = 10.0
# The loop stops starting requests at its deadline; in-flight requests get this long to finish.
GRACE = REQUEST_TIMEOUT + 2.0
# Per phase: a count bound besides the duration.
MAX_REQUESTS = 500_000


class RequestError(Exception):
    """A request that failed: an HTTP error, a transport error, or a GraphQL error (`code`)."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of already sorted values; 0.0 for none."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


@dataclass
class Recorder:
    """Latencies (seconds) of successful operations and the errors by code."""

    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)

    def ok(self, seconds: float) -> None:
        self.latencies.append(seconds)

    def error(self, code: str) -> None:
        self.errors[code] += 1


@dataclass
class LoadResult:
    name: str
    ok: int
    errors: int
    elapsed: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    error_codes: dict[str, int]
    # CPU of the load generator per completed request (its event loop's thread: it shares the machine).
    client_cpu_ms: float | None = None

    @property
    def rate(self) -> float:
        return self.ok / self.elapsed if self.elapsed > 0 else 0.0

    @classmethod
    def of(cls, name: str, recorder: Recorder, elapsed: float) -> LoadResult:
        values = sorted(recorder.latencies)
        return cls(
            name=name,
            ok=len(values),
            errors=sum(recorder.errors.values()),
            elapsed=elapsed,
            p50_ms=percentile(values, 50) * 1000,
            p95_ms=percentile(values, 95) * 1000,
            p99_ms=percentile(values, 99) * 1000,
            max_ms=(values[-1] * 1000) if values else 0.0,
            error_codes=dict(recorder.errors),
        )


Operation = Callable[[int], Awaitable[Any]]
Tick = Callable[[int], None]


async def closed_loop(
    name: str,
    operation: Operation,
    *,
    concurrency: int,
    duration: float,
    max_requests: int,
    on_progress: Tick | None = None,
) -> LoadResult:
    """`concurrency` workers call `operation(worker)` back to back until `duration` seconds have
    passed or `max_requests` were started. A raised RequestError (or any exception) is an error,
    recorded by its code; the latency of successes only is recorded."""
    recorder = Recorder()
    started = 0
    deadline = time.perf_counter() + duration

    async def worker(index: int) -> None:
        nonlocal started
        while started < max_requests and time.perf_counter() < deadline:
            started += 1
            t0 = time.perf_counter()
            try:
                await asyncio.wait_for(operation(index), REQUEST_TIMEOUT)
            except RequestError as exc:
                recorder.error(exc.code)
            except (TimeoutError, httpx.TimeoutException):
                recorder.error("TIMEOUT")
            except (httpx.HTTPError, OSError) as exc:
                recorder.error(type(exc).__name__)
            else:
                recorder.ok(time.perf_counter() - t0)
            if on_progress is not None:
                on_progress(1)

    t_start, cpu_start = time.perf_counter(), time.thread_time()
    tasks = [asyncio.create_task(worker(i)) for i in range(concurrency)]
    try:
        await asyncio.wait_for(asyncio.gather(*tasks), duration + GRACE)
    except TimeoutError:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    result = LoadResult.of(name, recorder, time.perf_counter() - t_start)
    done = result.ok + result.errors
    result.client_cpu_ms = (time.thread_time() - cpu_start) / done * 1000 if done else None
    return result


async def paced_loop(
    operation: Operation,
    *,
    rate: float,
    duration: float,
    max_in_flight: int,
    on_progress: Tick | None = None,
) -> tuple[int, int]:
    """Open loop: start `operation(n)` `rate` times per second for `duration` seconds, whatever
    the answers' speed, with at most `max_in_flight` running (a start that would exceed it is
    skipped). Returns (started, skipped). The operation records its own outcome."""
    interval = 1.0 / rate if rate > 0 else duration
    in_flight: set[asyncio.Task[Any]] = set()
    started = skipped = 0
    t0 = time.perf_counter()
    n = 0
    while True:
        due = t0 + n * interval
        if due - t0 >= duration:
            break
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if len(in_flight) >= max_in_flight:
            skipped += 1
        else:
            task = asyncio.create_task(_bounded(operation, n))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
            started += 1
        if on_progress is not None:
            on_progress(1)
        n += 1
    if in_flight:
        _, pending = await asyncio.wait(in_flight, timeout=GRACE)
        for task in pending:
            task.cancel()
    return started, skipped


async def _bounded(operation: Operation, n: int) -> None:
    # The operation records its own outcome; a stray failure must not kill the loop.
    with contextlib.suppress(Exception):
        await asyncio.wait_for(operation(n), GRACE)


# --- GraphQL over HTTP --------------------------------------------------------------------------
class GraphQLClient:
    """One keep-alive connection to the gateway (its own httpx.AsyncClient with limits of one
    connection): 64 clients are 64 connections, with no pool contention between them. The
    transport is the platform's own (shared.http), so the load generator takes less of the CPU
    it shares with the platform."""

    def __init__(self, url: str, token: str | None = None) -> None:
        self.url = url
        self.headers = {"content-type": "application/json"}
        if token:
            self.headers["authorization"] = f"Bearer {token}"
        self.http = httpx.AsyncClient(
            timeout=httpx.Timeout(REQUEST_TIMEOUT, connect=5.0),
            transport=AiohttpTransport(limits=httpx.Limits(max_connections=1)),
        )

    @staticmethod
    def body(query: str, variables: dict[str, Any] | None = None) -> bytes:
        return orjson.dumps({"query": query, "variables": variables or {}})

    async def post(self, body: bytes) -> dict[str, Any]:
        """The data of the answer; RequestError on an HTTP or GraphQL error."""
        response = await self.http.post(self.url, content=body, headers=self.headers)
        if response.status_code >= 400 and not response.content.startswith(b"{"):
            raise RequestError(f"HTTP_{response.status_code}")
        answer = orjson.loads(response.content)
        errors = answer.get("errors")
        if errors:
            code = (errors[0].get("extensions") or {}).get("code") or f"HTTP_{response.status_code}"
            raise RequestError(str(code), str(errors[0].get("message", ""))[:200])
        data: dict[str, Any] = answer.get("data") or {}
        return data

    async def __call__(self, query: str, **variables: Any) -> dict[str, Any]:
        return await self.post(self.body(query, variables))

    async def aclose(self) -> None:
        await self.http.aclose()
