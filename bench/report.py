"""The results: rich tables on the console, a markdown section in BENCHMARKS.md (newest run
first, the previous runs kept below it for comparison), and JSON for machines."""

from __future__ import annotations

import os
import platform
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from bench.load import LoadResult

RUNS_KEPT = 3
RUN_HEADING = "## Run "
PROFILE_HEADING = "## Profiling"
PREAMBLE = """# Benchmarks

`make bench` (`python -m bench`) starts the whole platform on free ports exactly as `make run`
does, seeds it through the bulk path (COPY straight into each service's database, projections
included; a test checks it leaves the same state as the public API), measures two ceilings on
the same machine in the same run (raw PostgreSQL inserts; `{ __typename }` through the
gateway), then the write path (`castVote`), propagation (castVote answer -> new score visible
by polling `idea(id)` and by an `ideaChanged` subscription), and the read path (`ideas(...)`
pages), sampling each process's memory and CPU. Targets are reported, never enforced.
Everything runs on loopback; the load generator shares the machine (its CPU is in the
resources table as "bench client").

Newest run first; the previous runs are kept below for comparison.
"""


@dataclass
class Row:
    phase: str
    measure: str
    rate: float | None = None
    unit: str = ""
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    errors: int | None = None
    ratio: float | None = None
    target: str = ""
    passed: bool | None = None
    reference: str = ""
    client_cpu_ms: float | None = None


def measured(
    phase: str,
    measure: str,
    result: LoadResult,
    unit: str,
    *,
    rate: float | None = None,
    ratio: float | None = None,
    target: str = "",
    passed: bool | None = None,
    reference: str = "",
    client_cpu: bool = True,
) -> Row:
    """A table row from a load phase's result (its rate unless `rate` is given)."""
    return Row(
        phase,
        measure,
        result.rate if rate is None else rate,
        unit,
        result.p50_ms,
        result.p95_ms,
        result.p99_ms,
        result.errors,
        ratio,
        target,
        passed,
        reference=reference,
        client_cpu_ms=result.client_cpu_ms if client_cpu else None,
    )


def against_ceiling(
    phase: str,
    measure: str,
    result: LoadResult,
    unit: str,
    *,
    ceiling: str,
    ceiling_rate: float,
    min_ratio: float,
    max_p99_ms: float,
) -> Row:
    """A row for a path with a ratio target: its rate over the rate of `ceiling` ("(a)", "(b)")
    at least `min_ratio`, and its p99 at most `max_p99_ms`."""
    ratio = result.rate / ceiling_rate if ceiling_rate > 0 else 0.0
    return measured(
        phase,
        measure,
        result,
        unit,
        ratio=ratio,
        target=f"≥ {min_ratio:.2f} x {ceiling}, p99 ≤ {max_p99_ms:.0f} ms",
        passed=ratio >= min_ratio and result.p99_ms <= max_p99_ms and result.ok > 0,
    )


def by_code(counts: dict[str, int]) -> str:
    """'CODE n, CODE n' in code order, for the notes under the table."""
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))


@dataclass
class ResourceRow:
    process: str
    rss_rest_mb: float
    rss_peak_mb: float
    cpu_s_per_1000_votes: float
    cpu_ms_per_read: float = 0.0
    target: str = ""
    passed: bool | None = None


@dataclass
class Report:
    started: datetime
    machine: dict[str, str]
    settings: dict[str, str]
    seeding: dict[str, Any]
    rows: list[Row] = field(default_factory=list)
    resources: list[ResourceRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "started": self.started.isoformat(),
            "machine": self.machine,
            "settings": self.settings,
            "seeding": self.seeding,
            "rows": [asdict(r) for r in self.rows],
            "resources": [asdict(r) for r in self.resources],
            "notes": self.notes,
        }


def machine() -> dict[str, str]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()
    return {
        "cores": str(os.cpu_count() or 0),
        "cpu": model,
        "memory": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
        "load": f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
    }


# --- formatting ---------------------------------------------------------------------------------
def _num(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def _verdict(passed: bool | None) -> str:
    return "-" if passed is None else ("PASS" if passed else "FAIL")


RESULT_HEADERS = (
    "Phase",
    "Measure",
    "Rate",
    "p50 ms",
    "p95 ms",
    "p99 ms",
    "Errors",
    "Ratio",
    "Target",
    "Result",
    "Client CPU ms/req",
    "Handbook",
)
RESOURCE_HEADERS = (
    "Process",
    "RSS at rest MB",
    "RSS peak MB",
    "CPU s / 1,000 votes",
    "CPU ms / read",
    "Target",
    "Result",
)


def result_cells(row: Row) -> list[str]:
    rate = f"{_num(row.rate, 1 if row.rate is not None and row.rate < 100 else 0)} {row.unit}".strip()
    return [
        row.phase,
        row.measure,
        rate if row.rate is not None else "-",
        _ms(row.p50_ms),
        _ms(row.p95_ms),
        _ms(row.p99_ms),
        _num(row.errors) if row.errors is not None else "-",
        f"{row.ratio:.2f}" if row.ratio is not None else "-",
        row.target or "-",
        _verdict(row.passed),
        _num(row.client_cpu_ms, 2),
        row.reference or "-",
    ]


def resource_cells(row: ResourceRow) -> list[str]:
    return [
        row.process,
        _num(row.rss_rest_mb, 1),
        _num(row.rss_peak_mb, 1),
        _num(row.cpu_s_per_1000_votes, 2),
        _num(row.cpu_ms_per_read, 2),
        row.target or "-",
        _verdict(row.passed),
    ]


def seeding_line(seeding: dict[str, Any]) -> str:
    rows = seeding.get("rows", {})
    return (
        f"Seeding (bulk path): {seeding.get('total_seconds', 0):.1f} s"
        f" = generate {seeding.get('generate_seconds', 0):.1f} s"
        f" + COPY {seeding.get('load_seconds', 0):.1f} s + VACUUM ANALYZE {seeding.get('vacuum_seconds', 0):.1f} s;"
        f" {rows.get('stakeholder', 0):,} stakeholders, {rows.get('idea', 0):,} ideas, {rows.get('vote', 0):,} votes,"
        f" {rows.get('comment', 0):,} comments, {rows.get('idea_activity', 0):,} idea_activity,"
        f" {rows.get('idea_score_day', 0):,} idea_score_day rows"
    )


def render(report: Report, console: Console) -> None:
    table = Table(title="Results", show_lines=False)
    for header in RESULT_HEADERS:
        left = header in ("Phase", "Measure", "Target", "Handbook")
        table.add_column(header, justify="left" if left else "right")
    for row in report.rows:
        cells = result_cells(row)
        style = None if row.passed is None else ("green" if row.passed else "red")
        table.add_row(*cells, style=style)
    console.print(table)
    resources = Table(title="Resources (RSS: PSS summed over the backends for postgres)")
    for header in RESOURCE_HEADERS:
        resources.add_column(header, justify="left" if header in ("Process", "Target") else "right")
    for resource_row in report.resources:
        style = None if resource_row.passed is None else ("green" if resource_row.passed else "red")
        resources.add_row(*resource_cells(resource_row), style=style)
    console.print(resources)
    console.print(seeding_line(report.seeding))
    for note in report.notes:
        console.print(f"- {note}")


def _md_table(headers: tuple[str, ...], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def markdown(report: Report) -> str:
    m, s = report.machine, report.settings
    parts = [
        f"{RUN_HEADING}{report.started.astimezone(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        "",
        f"Machine: {m['cores']} cores ({m['cpu']}), {m['memory']} RAM, Python {m['python']}, {m['os']};"
        f" load average at start {m['load']}.",
        "",
        "Settings: " + ", ".join(f"{k} {v}" for k, v in s.items()) + ".",
        "",
        _md_table(RESULT_HEADERS, [result_cells(r) for r in report.rows]),
        "",
        "Resources (RSS of each process; postgres: PSS summed over the postmaster and its backends):",
        "",
        _md_table(RESOURCE_HEADERS, [resource_cells(r) for r in report.resources]),
        "",
        seeding_line(report.seeding) + ".",
    ]
    if report.notes:
        parts += ["", *[f"- {note}" for note in report.notes]]
    return "\n".join(parts) + "\n"


def write_benchmarks(path: Path, section: str, keep: int = RUNS_KEPT) -> None:
    """Put `section` first among the runs in `path`, keeping the previous `keep - 1` runs and
    the hand-written profiling section (PROFILE_HEADING: what was measured, changed, and the
    before/after figures), which sits between the preamble and the runs."""
    previous: list[str] = []
    notes: list[str] = []
    if path.exists():
        text = path.read_text()
        chunks = re.split(r"(?m)^(?=## )", text)
        previous = [c.rstrip() + "\n" for c in chunks if c.startswith(RUN_HEADING)]
        notes = [c.rstrip() + "\n" for c in chunks if c.startswith(PROFILE_HEADING)]
    runs = [section.rstrip() + "\n", *previous][:keep]
    path.write_text(PREAMBLE + "\n" + "\n".join([*notes, *runs]))
