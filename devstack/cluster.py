"""The platform with every process started on its own, so that a test can `kill -9` any one
of them (a service instance, nats-server, PostgreSQL) and start it again — which honcho, as
used by `make run`, deliberately does not allow (one process ending stops them all)."""

from __future__ import annotations

import os
import random
import shlex
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

from devstack.platform import ROOT, DevstackSettings, Infra, process_env, process_urls, uvicorn_command
from devstack.servers import free_port, port_is_free
from shared.migrations import SERVICES


def _free_port_block(replicas: int) -> int:
    """A port p with p, p+10, ... p+10*(replicas-1) all free (instances listen 10 apart)."""
    for _ in range(200):
        base = random.randint(20_000, 40_000)
        if all(port_is_free(base + 10 * i) for i in range(replicas)):
            return base
    raise RuntimeError("no free port block")


class Cluster:
    def __init__(self, data_dir: Path, *, replicas: int = 1, env: dict[str, str] | None = None) -> None:
        ports = {f"{name}_port": _free_port_block(replicas) for name in SERVICES}
        self.settings = DevstackSettings(
            data_dir=data_dir,
            embedded=True,
            embedded_pg_port=free_port(),
            embedded_nats_port=free_port(),
            gateway_port=free_port(),
            replicas=replicas,
            log_level="WARNING",
            **ports,
        )
        self.extra_env = env or {}
        self.infra = Infra(self.settings)
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.logs = data_dir / "logs"
        # Gateways added with `add_gateway`: name -> (port, environment overrides).
        self._extra_gateways: dict[str, tuple[int, dict[str, str]]] = {}

    @property
    def graphql_url(self) -> str:
        return f"http://{self.settings.host}:{self.settings.gateway_port}/graphql"

    @property
    def names(self) -> list[str]:
        return list(process_urls(self.settings))

    def url(self, name: str) -> str:
        if name in self._extra_gateways:
            return f"http://{self.settings.host}:{self._extra_gateways[name][0]}"
        return process_urls(self.settings)[name]

    def add_gateway(self, name: str, env: dict[str, str] | None = None) -> str:
        """Start one more gateway in front of the same services, with its own settings (e.g.
        lower rate limits); returns its GraphQL URL. Killed and restarted like any process."""
        self._extra_gateways[name] = (free_port(), dict(env or {}))
        self.spawn(name)
        self.wait_ready(name)
        return f"{self.url(name)}/graphql"

    def start(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        self.infra.start()
        self.infra.migrate()
        for name in self.names:
            self.spawn(name)
        for name in self.names:
            self.wait_ready(name)

    def _command(self, name: str) -> tuple[list[str], dict[str, str]]:
        s = self.settings
        if name in self._extra_gateways:
            port, overrides = self._extra_gateways[name]
            cmd = uvicorn_command("gateway.main:create_app", s.host, port, 1)
            env = {**process_env(s, None), "PORT": str(port)}
            return shlex.split(cmd), {**os.environ, **env, **self.extra_env, **overrides}
        if name == "gateway":
            cmd = uvicorn_command("gateway.main:create_app", s.host, s.gateway_port, 1)
            env = process_env(s, None)
        else:
            service, _, number = name.partition(".")
            instance = int(number) - 1 if number else 0
            cmd = uvicorn_command(f"services.{service}.main:create_app", s.host, s.service_port(service, instance), 1)
            env = process_env(s, service, instance)
        return shlex.split(cmd), {**os.environ, **env, **self.extra_env}

    def spawn(self, name: str) -> None:
        cmd, env = self._command(name)
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 - handed to the process
        self.processes[name] = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def wait_ready(self, name: str, timeout: float = 60.0) -> None:
        probe = "healthz" if name == "gateway" or name in self._extra_gateways else "readyz"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            process = self.processes[name]
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited: {self.log_tail(name)}")
            try:
                with urllib.request.urlopen(f"{self.url(name)}/{probe}", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{name} not ready after {timeout}s: {self.log_tail(name)}")

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.logs / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        process = self.processes[name]
        if process.poll() is None:
            os.killpg(process.pid, sig)
            process.wait(timeout=30)

    def restart(self, name: str) -> None:
        self.kill(name, signal.SIGTERM)
        self.spawn(name)
        self.wait_ready(name)

    def pids(self, name: str) -> list[int]:
        """The pid of a process (for resource sampling)."""
        return [self.processes[name].pid]

    def kill_nats(self) -> None:
        assert self.infra.nats is not None
        self.infra.nats.kill()

    def start_nats(self) -> None:
        assert self.infra.nats is not None
        self.infra.nats.start()

    def restart_postgres(self, mode: str = "immediate", down_for: float = 0.0) -> None:
        """`immediate` is PostgreSQL's crash-like stop: no checkpoint, recovery on start.
        `down_for`: seconds the server stays stopped (so that calls meet it down)."""
        assert self.infra.postgres is not None
        self.infra.postgres.stop(mode=mode)
        time.sleep(down_for)
        self.infra.postgres.start()

    def stop(self) -> None:
        for name in list(self.processes):
            self.kill(name, signal.SIGTERM)
        self.processes.clear()
        self.infra.stop()
