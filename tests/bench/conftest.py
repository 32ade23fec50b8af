"""Benchmark harness tests: whole platforms started as `make run` starts them (free ports,
temporary folders)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from devstack.stack import Stack, new_data_dir, stack_env

ADMIN_EMAIL = "admin@bench.test"
ADMIN_PASSWORD = "admin password 123"


def pg_url(stack: Stack) -> str:
    return f"postgresql://postgres@127.0.0.1:{stack.env['EMBEDDED_PG_PORT']}"


@pytest.fixture(scope="module")
def two_platforms() -> Iterator[tuple[Stack, Stack]]:
    """Two fresh platforms, started side by side: one fed through the API, one bulk-seeded."""
    stacks = []
    for prefix in ("ccp-bench-api-", "ccp-bench-bulk-"):
        data_dir = new_data_dir(prefix)
        env = stack_env(data_dir, BOOTSTRAP_ADMIN_EMAIL=ADMIN_EMAIL, BOOTSTRAP_ADMIN_PASSWORD=ADMIN_PASSWORD)
        stacks.append(Stack(data_dir=data_dir, env=env))
    try:
        with ThreadPoolExecutor(2) as pool:
            for future in [pool.submit(s.start) for s in stacks]:
                future.result()
        yield stacks[0], stacks[1]
    finally:
        for s in stacks:
            s.stop()
            shutil.rmtree(s.data_dir, ignore_errors=True)
