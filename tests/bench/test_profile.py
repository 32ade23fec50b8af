"""The profile summary (bench/profile.py) reads py-spy's collapsed stacks: self and total shares
per function, one entry per function whatever the line."""

from __future__ import annotations

from pathlib import Path

from bench.profile import summarise


def test_summary_counts_self_and_total_samples_per_function(tmp_path: Path) -> None:
    raw = tmp_path / "read.gateway.1.txt"
    raw.write_text(
        "run (asyncio/runners.py:118);execute (graphql/execution/executor.py:10);"
        "send (anyio/_backends/_asyncio.py:5) 30\n"
        "run (asyncio/runners.py:118);execute (graphql/execution/executor.py:12) 10\n"
        "run (asyncio/runners.py:118);loads (orjson.py:1) 60\n"
        "garbage line\n"
    )
    summary = summarise(raw)
    lines = summary.splitlines()
    assert lines[0] == "## read.gateway.1: 100 samples"
    own = lines[lines.index("self:") + 1 : lines.index("total:")]
    total = lines[lines.index("total:") + 1 :]
    assert own[0].split() == ["60.0%", "loads", "(orjson.py)"]
    assert "30.0%  send (anyio/_backends/_asyncio.py)" in summary
    # both lines of `execute` count once each, under one entry
    assert any(line.split() == ["40.0%", "execute", "(graphql/execution/executor.py)"] for line in total)
    assert total[0].split() == ["100.0%", "run", "(asyncio/runners.py)"]
