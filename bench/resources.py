"""Memory and CPU of the platform's processes, found under the Stack's process tree by their
command line (services.<name>.main / gateway.main), plus PostgreSQL (postmaster and its
backends), nats-server and the benchmark's own process (the load generator).

Memory: RSS of each Python process (with WORKERS > 1, summed over its worker processes). For
PostgreSQL the sum of PSS over the postmaster and its backends (RSS would count the shared
buffers once per backend). CPU: user + system seconds, as deltas between two snapshots."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import psutil

from bench.report import ResourceRow
from devstack.stack import Stack

SERVICES = ("stakeholders", "ideas", "votes", "comments")
GROUPS = (*SERVICES, "gateway", "postgres", "nats", "bench client")
PYTHON_GROUPS = frozenset({*SERVICES, "gateway"})
MB = 1024 * 1024
# Target (reported, not enforced).
SERVICE_RSS_MB = 150.0


def _cmdline(process: psutil.Process) -> str:
    try:
        return " ".join(process.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return ""


def _app_of(cmdline: str) -> str | None:
    if "/bin/sh" in cmdline.split(" ", 1)[0] or cmdline.startswith("sh "):
        return None  # honcho's shell wrapper
    for name in SERVICES:
        if f"services.{name}.main" in cmdline:
            return name
    if "gateway.main" in cmdline:
        return "gateway"
    return None


def _with_children(process: psutil.Process) -> list[psutil.Process]:
    try:
        return [process, *process.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


class ProcessFinder:
    """The processes of each group, re-discovered on demand (PostgreSQL backends come and go)."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.me = psutil.Process(os.getpid())

    def groups(self) -> dict[str, list[psutil.Process]]:
        found: dict[str, list[psutil.Process]] = {name: [] for name in GROUPS}
        seen: set[int] = set()
        for process in self.stack.descendants():
            if process.pid in seen:
                continue
            cmdline = _cmdline(process)
            app = _app_of(cmdline)
            if app is not None:
                # The uvicorn process and, with WORKERS > 1, its worker processes.
                for p in _with_children(process):
                    if p.pid not in seen:
                        seen.add(p.pid)
                        found[app].append(p)
            elif "nats-server" in cmdline:
                seen.add(process.pid)
                found["nats"].append(process)
        postmaster = self.stack.postmaster_pid()
        if postmaster is not None:
            with contextlib.suppress(psutil.NoSuchProcess):
                found["postgres"] = _with_children(psutil.Process(postmaster))
        found["bench client"] = [self.me]
        return found


def _memory(processes: Iterable[psutil.Process], pss: bool) -> float:
    total = 0
    for process in processes:
        try:
            total += process.memory_full_info().pss if pss else process.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, AttributeError):
            continue
    return total / MB


def memory_mb(groups: dict[str, list[psutil.Process]]) -> dict[str, float]:
    return {name: _memory(procs, pss=(name == "postgres")) for name, procs in groups.items()}


def cpu_snapshot(groups: dict[str, list[psutil.Process]]) -> dict[str, dict[int, float]]:
    """CPU seconds (user + system) per process, per group."""
    out: dict[str, dict[int, float]] = {}
    for name, procs in groups.items():
        per_pid: dict[int, float] = {}
        for process in procs:
            try:
                times = process.cpu_times()
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
            per_pid[process.pid] = times.user + times.system
        out[name] = per_pid
    return out


def cpu_delta(before: dict[str, dict[int, float]], after: dict[str, dict[int, float]]) -> dict[str, float]:
    """CPU seconds spent per group between two snapshots (a process born in between counts
    from zero; one that ended in between is lost, which PostgreSQL's pooled backends rarely do)."""
    return {
        name: sum(max(0.0, t - before.get(name, {}).get(pid, 0.0)) for pid, t in per_pid.items())
        for name, per_pid in after.items()
    }


CpuMark = tuple[dict[str, dict[int, float]], float]


@dataclass
class Sampler:
    """Samples the groups' memory in a background thread; keeps the peak per group."""

    finder: ProcessFinder
    interval: float = 1.0
    peaks: dict[str, float] = field(default_factory=dict)
    samples: int = 0
    # CPU seconds the sampling itself cost (its thread), to take off the bench client's figures.
    cpu_spent: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def sample(self) -> dict[str, float]:
        t0 = time.thread_time()
        current = memory_mb(self.finder.groups())
        for name, value in current.items():
            self.peaks[name] = max(self.peaks.get(name, 0.0), value)
        self.samples += 1
        self.cpu_spent += time.thread_time() - t0
        return current

    def cpu_mark(self) -> CpuMark:
        """CPU seconds per process now, and what the sampling had cost so far."""
        return cpu_snapshot(self.finder.groups()), self.cpu_spent

    def cpu_since(self, mark: CpuMark) -> dict[str, float]:
        """CPU seconds per group since `mark`, the sampling's own cost taken off the bench client."""
        before, sampled = mark
        spent = cpu_delta(before, cpu_snapshot(self.finder.groups()))
        spent["bench client"] = max(0.0, spent.get("bench client", 0.0) - (self.cpu_spent - sampled))
        return spent

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)


def resource_rows(
    rest: dict[str, float], peaks: dict[str, float], cpu_per_vote: dict[str, float], cpu_per_read: dict[str, float]
) -> list[ResourceRow]:
    """The resources table: memory at rest and at peak, CPU per vote and per read, per group."""
    rows = []
    for name in GROUPS:
        at_rest = rest.get(name, 0.0)
        target, passed = "", None
        if name in SERVICES:
            target, passed = f"≤ {SERVICE_RSS_MB:.0f} MB at rest", at_rest <= SERVICE_RSS_MB
        rows.append(
            ResourceRow(
                name,
                at_rest,
                max(at_rest, peaks.get(name, 0.0)),
                cpu_per_vote.get(name, 0.0),
                cpu_per_read.get(name, 0.0),
                target,
                passed,
            )
        )
    return rows
