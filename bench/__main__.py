"""`make bench` (`python -m bench`): start the platform as `make run` does, seed it at scale
through the bulk path, measure ceilings, the write path, propagation and the read path, and
report (console tables + a section in BENCHMARKS.md).

    python -m bench                       # the full run: scale 1.0, 10 s phases (< 10 minutes)
    python -m bench --scale 0.001 --duration 1 --output /tmp/b.md --json /tmp/b.json

Everything is bounded: every phase by a duration and a request count, every request by a
timeout, every wait for the platform to catch up by a deadline. Missed targets are reported,
never turned into a failing exit code.

This module only runs the scenarios in order; each has its module: prepare (seed, log in),
ceilings, writes, propagation, reads; summary assembles the report; context is what they share."""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson
from rich.console import Console

from bench import ceilings, prepare, propagation, reads, writes
from bench import report as rep
from bench.context import Context
from bench.summary import build_report

ROOT = Path(__file__).resolve().parent.parent
DRAIN_TIMEOUT = 60.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="dataset size; 1.0 = 10k stakeholders, 100k ideas, 1M votes, 200k comments (default 1.0)",
    )
    p.add_argument("--duration", type=float, default=10.0, help="seconds per measured phase (default 10)")
    p.add_argument("--write-clients", type=int, default=64)
    p.add_argument("--read-clients", type=int, default=32)
    p.add_argument("--ceiling-clients", type=int, default=64)
    p.add_argument("--watched", type=int, default=8, help="ideas watched by subscriptions in the propagation phase")
    p.add_argument("--probes", type=int, default=2, help="propagation probes in flight at once (default 2)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--workers", type=int, default=None, help="WORKERS for the platform (default: as make run)")
    p.add_argument("--replicas", type=int, default=None, help="REPLICAS for the platform (default: as make run)")
    p.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md", help="markdown file to update")
    p.add_argument("--json", type=Path, default=None, help="also write the results as JSON here")
    p.add_argument("--keep-data", action="store_true", help="keep the platform's data folder")
    p.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="sample the Python processes with py-spy during the write and read phases; stacks + summaries here",
    )
    p.add_argument(
        "--drain-timeout",
        type=float,
        default=DRAIN_TIMEOUT,
        help="longest wait for the projections to catch up after a phase (default 60 s)",
    )
    args = p.parse_args(argv)
    if args.scale <= 0 or args.duration <= 0:
        p.error("--scale and --duration must be positive")
    return args


async def run(ctx: Context) -> rep.Report:
    """The scenarios, in order: each one adds its rows and notes to `ctx`."""
    started = datetime.now(UTC)
    machine = rep.machine()
    with ctx.progress:
        async with ctx.phase("start the platform (python -m devstack run)"):
            await asyncio.to_thread(ctx.stack.start)
        await prepare.seed(ctx)
        await prepare.check_seeded_state(ctx)
        await prepare.log_in(ctx)
        await asyncio.sleep(1.0)
        ctx.rest = ctx.sampler.sample()
        ceiling_a = await ceilings.postgres(ctx)
        ceiling_b = await ceilings.gateway(ctx)
        ctx.sampler.start()
        with ctx.profiler.recording("write", ctx.args.duration):
            write = await writes.write_path(ctx, ceiling_a)
        await propagation.propagation(ctx, write.rate)
        with ctx.profiler.recording("read", ctx.args.duration * len(reads.READS)):
            await reads.read_path(ctx, ceiling_b)
        ctx.sampler.stop()
    return build_report(ctx, started, machine)


async def main_async(args: argparse.Namespace, console: Console) -> rep.Report:
    ctx = Context(args, console)
    try:
        return await run(ctx)
    finally:
        ctx.sampler.stop()
        await ctx.close()
        await asyncio.to_thread(ctx.stack.stop)
        if not args.keep_data:
            shutil.rmtree(ctx.data_dir, ignore_errors=True)
        else:
            console.print(f"data kept in {ctx.data_dir}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console()
    if not console.is_terminal:  # a log: wide enough for the tables
        console = Console(width=220)
    t0 = time.perf_counter()
    try:
        import uvloop

        report = uvloop.run(main_async(args, console))
    except KeyboardInterrupt:
        console.print("interrupted")
        return 130
    report.notes.append(f"whole run {time.perf_counter() - t0:.0f} s")
    rep.render(report, console)
    rep.write_benchmarks(args.output, rep.markdown(report))
    console.print(f"results written to {args.output}")
    if args.json is not None:
        args.json.write_bytes(orjson.dumps(report.to_json(), option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
