"""Before anything is measured: generate the dataset and bulk-load it, check that the seeded
projections agree with the seeded votes, and log in the accounts the load generator uses."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable

from bench.context import Context, Voter
from bench.load import GraphQLClient, RequestError
from bench.seed import LOGIN, PASSWORD, SeedConfig, bulk_load, generate


async def seed(ctx: Context) -> None:
    config = SeedConfig.at_scale(
        ctx.args.scale,
        min_stakeholders=max(ctx.args.write_clients, ctx.args.read_clients) * 2 + 16,
        seed=ctx.args.seed,
    )
    async with ctx.phase(
        f"generate the dataset ({config.stakeholders:,} stakeholders, {config.ideas:,} "
        f"ideas, {config.votes:,} votes, {config.comments:,} comments)"
    ):
        ctx.ds = await asyncio.to_thread(generate, config, None, ctx.seed_report)
    ds = ctx.ds
    ctx.dataset_summary = (
        f"{len(ds.people):,} stakeholders / {len(ds.ideas):,} ideas / {ds.final_vote_count:,} votes / "
        f"{len(ds.comments):,} comments"
    )
    async with ctx.phase("bulk load (COPY into the four databases, VACUUM ANALYZE)"):
        await bulk_load(ds, ctx.pg_url, ctx.seed_report)


async def check_seeded_state(ctx: Context) -> None:
    """The seeded projections agree with the seeded votes (sum of scores = sum of weights)."""
    score, weight = await ctx.databases.totals()
    if score != weight:
        ctx.notes.append(f"seeded state inconsistent: sum(idea.score) {score} != sum(vote.weight) {weight}")


async def log_in(ctx: Context) -> None:
    ds = ctx.dataset
    wanted = max(ctx.args.write_clients, ctx.args.read_clients)
    members = ds.members(wanted)
    if len(members) < wanted:
        raise RuntimeError(f"only {len(members)} MEMBER stakeholders for {wanted} clients")
    tokens: dict[int, str] = {}
    anonymous = GraphQLClient(ctx.url)
    semaphore = asyncio.Semaphore(8)

    async def login(index: int, tick: Callable[[int], None]) -> None:
        async with semaphore:
            for _ in range(30):
                try:
                    data = await anonymous(LOGIN, email=ds.people[index].email, password=PASSWORD)
                except RequestError as exc:
                    if exc.code != "RATE_LIMITED":
                        raise
                    await asyncio.sleep(1.0)
                    continue
                tokens[index] = data["login"]["token"]
                tick(1)
                return
            raise RuntimeError("login stayed rate limited")

    async with ctx.phase(f"log in {wanted} seeded stakeholders") as tick:
        await asyncio.gather(*(login(i, tick) for i in members))
    await anonymous.aclose()
    voted = ds.votes_of(members[: ctx.args.write_clients])
    ctx.voters = [
        Voter(index=i, token=tokens[i], client=GraphQLClient(ctx.url, tokens[i]), voted=voted[i])
        for i in members[: ctx.args.write_clients]
    ]
    ctx.readers = [tokens[i] for i in members[: ctx.args.read_clients]]
    # The history is in the databases now: keep the load generator's heap small, and out of
    # the garbage collector's way (a full collection over millions of objects stalls the loop).
    ds.release_history()
    gc.collect()
    gc.freeze()
