"""Fixtures of the resilience suite: whole clusters (every process on its own, so any one can
be killed), and the hook that rewrites RELIABILITY.md from the figures this run measured, only
when asked to (`make reliability` sets RELIABILITY_REPORT=1): a plain test run computes and
asserts the figures but writes no tracked file."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from devstack.cluster import Cluster
from devstack.stack import new_data_dir
from tests.resilience.report import RESULTS
from tests.resilience.support import CLUSTER_ENV, NO_RATE_LIMITS


@contextmanager
def running_cluster(prefix: str, **env: str) -> Iterator[Cluster]:
    """A whole platform on free ports and a temporary folder; stopped and removed afterwards
    (the folder is kept when the cluster could not start, for its logs)."""
    data_dir = new_data_dir(f"ccp-{prefix}-")
    cluster = Cluster(data_dir, replicas=1, env={**CLUSTER_ENV, **NO_RATE_LIMITS, **env})
    try:
        cluster.start()
    except BaseException:
        cluster.stop()
        raise
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("RELIABILITY_REPORT") == "1" and not RESULTS.empty:
        RESULTS.render()
