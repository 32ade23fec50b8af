"""`make bench PROFILE=dir` (`python -m bench --profile dir`): sample every Python process of the
platform with py-spy while a phase runs, and summarise where the time goes.

py-spy attaches from outside (no change to the profiled code, `--nonblocking` so the process is not
paused) and writes collapsed stacks (`--format raw`: "frame;frame;... count" per line). The summary
lists, per process, the functions with the most samples of their own ("self") and the most samples
anywhere on the stack ("total"), which is what picking the next lever needs."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from bench.resources import PYTHON_GROUPS, ProcessFinder

PY_SPY = Path(sys.executable).with_name("py-spy")
RATE = 200  # samples per second per process
TOP = 30


def _short(frame: str) -> str:
    """`resolve (gateway/view.py:42)` -> `resolve (gateway/view.py)`: one entry per function."""
    name, _, where = frame.partition(" (")
    path = where.rsplit(":", 1)[0].rstrip(")")
    for marker in ("site-packages/", "/work/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{name} ({path})"


def summarise(raw: Path, top: int = TOP) -> str:
    own: Counter[str] = Counter()
    anywhere: Counter[str] = Counter()
    samples = 0
    # py-spy copies frame names from process memory: a stray byte must not end the run
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [_short(f) for f in stack.split(";")]
        # py-spy puts the process/thread first; idle threads show as a lone frame
        samples += n
        own[frames[-1]] += n
        for frame in set(frames):
            anywhere[frame] += n
    lines = [f"## {raw.stem}: {samples} samples"]
    if samples:
        lines.append("self:")
        lines += [f"  {100 * n / samples:5.1f}%  {f}" for f, n in own.most_common(top)]
        lines.append("total:")
        lines += [f"  {100 * n / samples:5.1f}%  {f}" for f, n in anywhere.most_common(top)]
    return "\n".join(lines)


class Profiler:
    """py-spy on every Python process of the platform, one recording per phase."""

    def __init__(self, finder: ProcessFinder, directory: Path | None) -> None:
        self.finder = finder
        self.directory = directory

    @contextlib.contextmanager
    def recording(self, phase: str, seconds: float) -> Iterator[None]:
        if self.directory is None:
            yield
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        running: list[tuple[subprocess.Popen[bytes], Path]] = []
        for group, processes in self.finder.groups().items():
            if group not in PYTHON_GROUPS:
                continue
            for process in processes:
                out = self.directory / f"{phase}.{group}.{process.pid}.txt"
                command = [str(PY_SPY), "record", "--pid", str(process.pid), "--duration", str(int(seconds) + 1)]
                command += ["--rate", str(RATE), "--format", "raw", "--nonblocking", "--output", str(out)]
                running.append((subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), out))
        try:
            yield
        finally:
            summaries = []
            for proc, out in running:
                try:
                    proc.wait(timeout=seconds + 30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                if out.exists():
                    summaries.append(summarise(out))
            (self.directory / f"{phase}.summary.txt").write_text("\n\n".join(summaries) + "\n")
