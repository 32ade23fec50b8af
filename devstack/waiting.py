"""Waiting for an observable fact in tests: one helper, bounded, never a timing assertion.

`await eventually(check)` in async tests (`check` may be a plain function or a coroutine
function); `eventually_blocking(check)` in synchronous ones (the end-to-end tiers). Both call
`check` until it returns a truthy value and return that value; a check that raises
`AssertionError` counts as "not yet". When the time is up they fail with the last value (or
the last assertion) so the test says what it was waiting for."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar, overload

T = TypeVar("T")

DEFAULT_TIMEOUT = 20.0
DEFAULT_INTERVAL = 0.05


class _Attempts:
    """The deadline and the last outcome shared by both forms."""

    def __init__(self, timeout: float, what: str) -> None:
        self.deadline = time.monotonic() + timeout
        self.timeout = timeout
        self.what = what
        self.last: object = None
        self.error: AssertionError | None = None

    def __iter__(self) -> Iterator[int]:
        attempt = 0
        while True:
            yield attempt
            attempt += 1
            if time.monotonic() >= self.deadline:
                return

    def met(self, value: object) -> bool:
        """Record one check's value; True when it is the fact waited for."""
        self.error, self.last = None, value
        return bool(value)

    def failed(self) -> AssertionError:
        detail = f"last assertion: {self.error}" if self.error is not None else f"last value: {self.last!r}"
        return AssertionError(f"{self.what} not met within {self.timeout}s; {detail}")


@overload
async def eventually(
    check: Callable[[], Awaitable[T | None]], *, timeout: float = ..., interval: float = ..., what: str = ...
) -> T: ...


@overload
async def eventually(
    check: Callable[[], T | None], *, timeout: float = ..., interval: float = ..., what: str = ...
) -> T: ...


async def eventually(
    check: Callable[[], Any],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    interval: float = DEFAULT_INTERVAL,
    what: str = "condition",
) -> Any:
    attempts = _Attempts(timeout, what)
    for _ in attempts:
        try:
            value = check()
            if inspect.isawaitable(value):
                value = await value
            if attempts.met(value):
                return value
        except AssertionError as exc:
            attempts.error = exc
        await asyncio.sleep(interval)
    raise attempts.failed()


def eventually_blocking(
    check: Callable[[], T | None],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    interval: float = DEFAULT_INTERVAL,
    what: str = "condition",
) -> T:
    attempts = _Attempts(timeout, what)
    for _ in attempts:
        try:
            value = check()
            if attempts.met(value):
                return value
        except AssertionError as exc:
            attempts.error = exc
        time.sleep(interval)
    raise attempts.failed()
