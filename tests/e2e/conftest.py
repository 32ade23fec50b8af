"""End-to-end: the whole platform started as a user starts it, used only through GraphQL."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from devstack.stack import GraphQL, Stack, new_data_dir, stack_env
from tests.e2e.support import Crowd, Session, login, with_role

__all__ = ["ADMIN_EMAIL", "ADMIN_PASSWORD", "GraphQL", "Stack"]

ADMIN_EMAIL = "admin@platform.test"
ADMIN_PASSWORD = "admin password 123"


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    data_dir = new_data_dir("ccp-e2e-")
    s = Stack(
        data_dir=data_dir,
        env=stack_env(data_dir, BOOTSTRAP_ADMIN_EMAIL=ADMIN_EMAIL, BOOTSTRAP_ADMIN_PASSWORD=ADMIN_PASSWORD),
    )
    s.start()
    try:
        yield s
    finally:
        s.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


# --- sessions shared by the acceptance suite (tests/e2e/support.py) -------------------------------
@pytest.fixture(scope="session")
def url(stack: Stack) -> str:
    return stack.graphql_url


@pytest.fixture(scope="session")
def admin(url: str) -> Session:
    return login(url, ADMIN_EMAIL, ADMIN_PASSWORD)


@pytest.fixture(scope="session")
def product_team(url: str, admin: Session) -> Session:
    return with_role(url, admin, "PRODUCT_TEAM")


@pytest.fixture(scope="session")
def moderator(url: str, admin: Session) -> Session:
    return with_role(url, admin, "MODERATOR", kind="CUSTOMER")


@pytest.fixture(scope="session")
def crowd(url: str) -> Crowd:
    return Crowd(url)
