"""The write path: `castVote` by distinct stakeholders, back to back, on Zipf-distributed ideas
they may vote on and have no vote on yet; then the wait until the projections caught up, the
CPU per vote of every process and the PostgreSQL transactions per vote."""

from __future__ import annotations

import asyncio
import uuid

from bench import report as rep
from bench.context import Context, Voter
from bench.load import MAX_REQUESTS, GraphQLClient, LoadResult, RequestError, closed_loop
from bench.resources import GROUPS, SERVICES
from bench.seed import CAST
from gateway.ids import encode_global_id

# Targets (reported, not enforced).
WRITE_RATIO, WRITE_P99_MS = 0.15, 100.0


def idea_gid(idea_id: uuid.UUID) -> str:
    """The opaque global id of an idea, as the gateway encodes it."""
    return encode_global_id("Idea", idea_id)


def pick_idea(ctx: Context, voter: Voter, exclude: set[int] | frozenset[int] = frozenset()) -> int | None:
    """A Zipf-distributed idea this voter may vote on and has no vote on yet."""
    ds = ctx.dataset
    for _ in range(200):
        idea = ds.zipf_idea(ctx.rng)
        if idea not in voter.voted and idea not in exclude and ds.accepts_votes_from(idea, voter.index):
            return idea
    start = ctx.rng.randrange(len(ds.ideas))
    for k in range(len(ds.ideas)):
        idea = (start + k) % len(ds.ideas)
        if idea not in voter.voted and idea not in exclude and ds.accepts_votes_from(idea, voter.index):
            return idea
    return None


async def cast(ctx: Context, voter: Voter, idea: int, client: GraphQLClient | None = None) -> int:
    weight = ctx.rng.choice((1, 2, 3))
    voter.voted.add(idea)  # a failed cast may still have landed: never vote on it again
    await (client or voter.client).post(
        GraphQLClient.body(CAST, {"id": idea_gid(ctx.dataset.ideas[idea].id), "w": weight})
    )
    return weight


async def write_path(ctx: Context, ceiling_a: LoadResult) -> LoadResult:
    n, seconds = len(ctx.voters), ctx.args.duration
    mark = ctx.sampler.cpu_mark()
    xacts = await ctx.databases.transactions()

    async def vote(worker: int) -> None:
        voter = ctx.voters[worker]
        idea = pick_idea(ctx, voter)
        if idea is None:
            raise RequestError("NO_IDEA_LEFT")
        await cast(ctx, voter, idea)

    async with ctx.phase(f"write path: castVote, {n} stakeholders, Zipf ideas", seconds) as tick:
        result = await closed_loop(
            "castVote", vote, concurrency=n, duration=seconds, max_requests=MAX_REQUESTS, on_progress=tick
        )
    drained = await ctx.drain("write phase")
    spent = ctx.sampler.cpu_since(mark)
    await asyncio.sleep(0.6)  # pg_stat_database is flushed by the backends at most every 0.5 s or so
    xacts_after = await ctx.databases.transactions()
    if result.ok:
        ctx.notes.append(
            "PostgreSQL transactions per vote (write phase until caught up, the bench's own checks included): "
            + ", ".join(f"{k} {(xacts_after.get(k, 0) - xacts.get(k, 0)) / result.ok:.1f}" for k in SERVICES)
        )
    votes = max(1, result.ok)
    ctx.cpu_per_vote = {name: spent.get(name, 0.0) / votes * 1000 for name in GROUPS}
    ctx.rows.append(
        rep.against_ceiling(
            "write",
            f"castVote, {n} clients (distinct stakeholders), Zipf ideas",
            result,
            "votes/s",
            ceiling="(a)",
            ceiling_rate=ceiling_a.rate,
            min_ratio=WRITE_RATIO,
            max_p99_ms=WRITE_P99_MS,
        )
    )
    ctx.rows.append(rep.Row("write", "projections caught up after the write phase", drained, "s"))
    if result.error_codes:
        ctx.notes.append("write path errors by code: " + rep.by_code(result.error_codes))
    return result
