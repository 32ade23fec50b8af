"""The whole platform as a user starts it (`python -m devstack run`, what `make run` runs), on
free ports and its own data folder; used by the end-to-end tests and by the benchmarks."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

from devstack.servers import free_port

ROOT = Path(__file__).resolve().parent.parent


def stack_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """Environment for a platform on free ports, its data in `data_dir`."""
    env = {
        **os.environ,
        "DATA_DIR": str(data_dir),
        "EMBEDDED": "true",
        "EMBEDDED_PG_PORT": str(free_port()),
        "EMBEDDED_NATS_PORT": str(free_port()),
        "GATEWAY_PORT": str(free_port()),
        "STAKEHOLDERS_PORT": str(free_port()),
        "IDEAS_PORT": str(free_port()),
        "VOTES_PORT": str(free_port()),
        "COMMENTS_PORT": str(free_port()),
        "LOG_LEVEL": "WARNING",
        **extra,
    }
    env.pop("PG_URL", None)
    env.pop("NATS_URL", None)
    return env


def new_data_dir(prefix: str = "ccp-stack-") -> Path:
    data_dir = Path(tempfile.mkdtemp(prefix=prefix))
    data_dir.chmod(0o755)
    return data_dir


@dataclass
class Stack:
    data_dir: Path
    env: dict[str, str]
    process: subprocess.Popen[str] | None = None
    lines: list[str] = field(default_factory=list)

    @property
    def graphql_url(self) -> str:
        return f"http://127.0.0.1:{self.env['GATEWAY_PORT']}/graphql"

    def start(self, timeout: float = 180.0) -> None:
        self.lines.clear()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "devstack", "run"],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        ready: queue.Queue[bool] = queue.Queue()

        def pump() -> None:
            assert self.process is not None and self.process.stdout is not None
            for line in self.process.stdout:
                self.lines.append(line)
                if "platform ready" in line:
                    ready.put(True)
            ready.put(False)

        threading.Thread(target=pump, daemon=True).start()
        try:
            ok = ready.get(timeout=timeout)
        except queue.Empty:
            ok = False
        if not ok:
            self.stop()
            raise RuntimeError("the platform did not start:\n" + "".join(self.lines[-80:]))

    def descendants(self) -> list[psutil.Process]:
        if self.process is None:
            return []
        try:
            return psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def stop(self, sig: int = signal.SIGINT) -> int:
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        rc = self.process.returncode
        self.process = None
        return rc

    def postmaster_pid(self) -> int | None:
        pid_file = self.data_dir / "postgres" / "postmaster.pid"
        try:
            return int(pid_file.read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None


class GraphQL:
    def __init__(self, url: str, token: str | None = None) -> None:
        self.url = url
        self.token = token
        self.client = httpx.Client(timeout=30)

    def __call__(self, query: str, **variables: Any) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        response = self.client.post(self.url, json={"query": query, "variables": variables}, headers=headers)
        assert response.status_code < 500, response.text
        return response.json()  # type: ignore[no-any-return]

    def ok(self, query: str, **variables: Any) -> dict[str, Any]:
        body = self(query, **variables)
        assert not body.get("errors"), body
        return body["data"]  # type: ignore[no-any-return]

    def error_codes(self, query: str, **variables: Any) -> list[str]:
        body = self(query, **variables)
        assert body.get("errors"), body
        return [e.get("extensions", {}).get("code") for e in body["errors"]]
