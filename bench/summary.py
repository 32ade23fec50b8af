"""The report of a run, once every scenario has run: the resources table, and the notes under the
tables (CPU per vote and per read, the floors, whether the machine was shared, the ceilings'
sanity, the platform's own warnings) ahead of or after the notes the scenarios wrote."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import asdict
from datetime import datetime

import orjson

from bench import report as rep
from bench.ceilings import sanity_notes
from bench.context import Context
from bench.floor import floor_notes
from bench.reads import READ, READ_RATIO
from bench.resources import PYTHON_GROUPS, resource_rows
from bench.writes import WRITE_RATIO


def build_report(ctx: Context, started: datetime, machine: dict[str, str]) -> rep.Report:
    resources = resource_rows(ctx.rest, ctx.sampler.peaks, ctx.cpu_per_vote, ctx.cpu_per_read)
    notes = ctx.notes
    platform_cpu = {k: v for k, v in ctx.cpu_per_vote.items() if k in PYTHON_GROUPS | {"postgres", "nats"}}
    if platform_cpu:
        costliest = max(platform_cpu, key=lambda k: platform_cpu[k])
        notes.insert(
            0,
            f"costliest hop per vote: {costliest} ({platform_cpu[costliest]:.2f} CPU s per "
            "1,000 votes, write phase until the projections caught up)",
        )
        total = sum(platform_cpu.values())
        cores = os.cpu_count() or 1
        notes.insert(
            1,
            f"platform CPU per vote, all its processes: {total:.1f} ms, so {cores} cores cap the write path near "
            f"{cores * 1000 / total if total else 0:,.0f} votes/s however the work is spread",
        )
    read_cpu = {k: v for k, v in ctx.cpu_per_read.items() if k in PYTHON_GROUPS | {"postgres", "nats"}}
    if read_cpu and sum(read_cpu.values()) > 0:
        top = sorted(read_cpu, key=lambda k: read_cpu[k], reverse=True)[:3]
        total = sum(read_cpu.values())
        notes.insert(
            2,
            f"platform CPU per read request (average of the read phases): {total:.1f} ms; most in "
            + ", ".join(f"{k} {read_cpu[k]:.1f} ms" for k in top),
        )
    ceilings = {row.phase: row.rate for row in ctx.rows if row.phase.startswith("ceiling") and row.rate}
    notes[3:3] = floor_notes(ctx.cpu_per_vote.get("postgres"), ceilings, READ, WRITE_RATIO, READ_RATIO)
    load = os.getloadavg()[0]
    cores = os.cpu_count() or 1
    if float(machine["load"].split()[0]) > cores / 2 or load > cores:
        notes.append(
            f"the machine was shared: load average {machine['load'].split()[0]} at the start and {load:.2f} at the "
            f"end on {cores} cores (other processes were running): the figures are pessimistic"
        )
    notes += sanity_notes(ctx.rows)
    warnings = platform_warnings(ctx.stack.lines)
    if warnings:
        notes.append(
            "platform log warnings/errors during the run: "
            + ", ".join(f"{name} x{count}" for name, count in warnings.most_common(12))
        )
    seeding = {**asdict(ctx.seed_report), "total_seconds": ctx.seed_report.total_seconds}
    settings = {
        "scale": f"{ctx.args.scale:g}",
        "phase duration": f"{ctx.args.duration:g} s",
        "WORKERS": str(ctx.args.workers or 1),
        "REPLICAS": str(ctx.args.replicas or 1),
        "dataset": ctx.dataset_summary,
    }
    return rep.Report(
        started=started,
        machine=machine,
        settings=settings,
        seeding=seeding,
        rows=ctx.rows,
        resources=resources,
        notes=notes,
    )


def platform_warnings(lines: list[str]) -> Counter[str]:
    """'<process> <event>' of the JSON log lines at warning level or above (honcho prefixes
    each line with the time and the process name)."""
    found: Counter[str] = Counter()
    for line in list(lines):
        process, sep, rest = line.partition("| ")
        if not sep or not rest.startswith("{"):
            continue
        try:
            entry = orjson.loads(rest)
        except orjson.JSONDecodeError:
            continue
        if isinstance(entry, dict) and entry.get("level") in ("warning", "error", "critical"):
            found[f"{process.split()[-1] if process.split() else '?'} {entry.get('event')}"] += 1
    return found
