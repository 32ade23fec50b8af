"""The whole harness on a tiny data set with short phases, so it cannot rot: it must finish,
and its table must hold every figure, each positive. No assertion on time."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.reads import READS
from bench.resources import GROUPS, SERVICES

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(900)
def test_the_harness_runs_end_to_end_on_a_tiny_dataset(tmp_path: Path) -> None:
    output, results = tmp_path / "BENCHMARKS.md", tmp_path / "results.json"
    output.write_text(
        "# Benchmarks\n\n## Profiling and fixes\n\nbefore/after, by hand\n\n"
        "## Run 2000-01-01 00:00 UTC\n\nan older run\n"
    )
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--scale",
            "0.001",
            "--duration",
            "1",
            "--drain-timeout",
            "30",
            "--output",
            str(output),
            "--json",
            str(results),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=840,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    report = json.loads(results.read_text())

    rows = {(r["phase"], r["measure"].split(",")[0]): r for r in report["rows"]}
    expected = [
        ("ceiling (a)", "PostgreSQL INSERT … ON CONFLICT DO NOTHING"),
        ("ceiling (b)", "{ __typename } through the gateway"),
        ("write", "castVote"),
    ]
    expected += [
        ("propagation", m) for m in (r["measure"].split(",")[0] for r in report["rows"] if r["phase"] == "propagation")
    ]
    expected += [("read", name) for name, _ in READS]
    assert len([r for r in report["rows"] if r["phase"] == "propagation"]) == 2
    for key in expected:
        row = rows[key]
        assert row["rate"] > 0, row
        assert 0 < row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"], row
        assert row["errors"] is not None, row
        if row["phase"] in ("write", "read"):
            assert row["ratio"] > 0 and row["passed"] is not None, row
        if row["phase"] == "propagation":
            assert row["passed"] is not None, row

    resources = {r["process"]: r for r in report["resources"]}
    assert set(resources) == set(GROUPS)
    for name, row in resources.items():
        assert row["rss_rest_mb"] > 0 and row["rss_peak_mb"] >= row["rss_rest_mb"], row
        assert row["cpu_s_per_1000_votes"] >= 0 and row["cpu_ms_per_read"] >= 0, row
        if name in ("votes", "ideas", "gateway", "postgres"):  # each has work on every vote and every read
            assert row["cpu_s_per_1000_votes"] > 0 and row["cpu_ms_per_read"] > 0, row
        assert (row["passed"] is not None) == (name in SERVICES), row
    floors = [note for note in report["notes"] if note.startswith("floor (")]
    assert [f.split(")")[0] for f in floors] == ["floor (write", "floor (read"], report["notes"]
    seeding = report["seeding"]
    assert seeding["total_seconds"] > 0 and seeding["rows"]["vote"] > 0 and seeding["rows"]["idea"] > 0

    markdown = output.read_text()
    assert markdown.startswith("# Benchmarks")
    runs = [line for line in markdown.splitlines() if line.startswith("## Run ")]
    assert len(runs) == 2 and runs[1] == "## Run 2000-01-01 00:00 UTC", runs  # the new run first, the old kept
    # the hand-written profiling section is kept, ahead of the runs
    assert "before/after, by hand" in markdown
    assert markdown.index("## Profiling and fixes") < markdown.index(runs[0])
    for name, _ in READS:
        assert name in markdown
    for header in ("p50 ms", "p99 ms", "RSS at rest MB", "CPU s / 1,000 votes", "Machine:"):
        assert header in markdown
