"""Propagation: how long after a `castVote` answer the new score is visible, by polling
`idea(id)` and by an `ideaChanged` subscription, while background votes arrive at half the
write path's rate. At most `--probes` probes run at once; each casts one vote on a watched idea
and waits for its new score both ways."""

from __future__ import annotations

import asyncio
import time

from bench import report as rep
from bench.context import Context
from bench.load import GraphQLClient, LoadResult, Recorder, RequestError, paced_loop
from bench.seed import Dataset
from bench.writes import cast, idea_gid, pick_idea
from bench.ws import GraphQLWS, Subscription

POLL = "query($id: ID!) { idea(id: $id) { score } }"
WATCH = "subscription($id: ID!) { ideaChanged(id: $id) { score } }"
PROBE_TIMEOUT = 10.0
POLL_INTERVAL = 0.01
# Target (reported, not enforced).
PROPAGATION_P99_MS = 250.0


def watched_ideas(ds: Dataset, count: int) -> list[int]:
    """Public OPEN ideas of middling popularity (not the hottest rows)."""
    ranked = ds.by_rank
    start = min(len(ranked) // 10, 100)
    picked = [i for i in ranked[start:] if ds.ideas[i].status == "OPEN" and not ds.ideas[i].visible_to]
    return picked[:count]


async def propagation(ctx: Context, max_rate: float) -> None:
    ds = ctx.dataset
    rate = max(1.0, max_rate / 2)
    seconds = ctx.args.duration
    watched = watched_ideas(ds, ctx.args.watched)
    watched_set = frozenset(watched)
    ws = await GraphQLWS(ctx.url, ctx.readers[0]).connect()
    poll_clients = {i: GraphQLClient(ctx.url, ctx.readers[0]) for i in watched}
    probe_clients = {v.index: GraphQLClient(ctx.url, v.token) for v in ctx.voters}
    subscriptions: dict[int, Subscription] = {}
    scores: dict[int, int] = {}
    busy: set[int] = set()
    # An idea whose last probe failed is not probed again: its score is no longer known exactly.
    retired: set[int] = set()
    poll_rec, sub_rec = Recorder(), Recorder()
    background = Recorder()

    async def score_now(idea: int) -> int:
        data = await poll_clients[idea](POLL, id=idea_gid(ds.ideas[idea].id))
        return int(data["idea"]["score"])

    async def probe(idea: int, record: bool = True) -> None:
        busy.add(idea)
        try:
            voters = [v for v in ctx.voters if idea not in v.voted]
            if not voters:
                return
            voter = ctx.rng.choice(voters)
            try:
                weight = await cast(ctx, voter, idea, probe_clients[voter.index])
            except Exception as exc:  # counted, not fatal
                code = exc.code if isinstance(exc, RequestError) else type(exc).__name__
                retired.add(idea)
                if record:
                    poll_rec.error(code)
                    sub_rec.error(code)
                return
            t0 = time.perf_counter()
            target = scores[idea] + weight
            gid = idea_gid(ds.ideas[idea].id)
            poll_body = GraphQLClient.body(POLL, {"id": gid})

            async def by_poll() -> float:
                while True:
                    data = await poll_clients[idea].post(poll_body)
                    if int(data["idea"]["score"]) >= target:
                        return time.perf_counter() - t0
                    await asyncio.sleep(POLL_INTERVAL)

            async def by_subscription() -> float:
                while True:
                    arrived, data = await subscriptions[idea].next(PROBE_TIMEOUT)
                    changed = data.get("ideaChanged") or {}
                    if int(changed.get("score", -1)) >= target:
                        return max(0.0, arrived - t0)

            outcomes = await asyncio.gather(
                asyncio.wait_for(by_poll(), PROBE_TIMEOUT),
                asyncio.wait_for(by_subscription(), PROBE_TIMEOUT),
                return_exceptions=True,
            )
            for recorder, outcome in zip((poll_rec, sub_rec), outcomes, strict=True):
                if not record:
                    continue
                if isinstance(outcome, BaseException):
                    recorder.error("TIMEOUT" if isinstance(outcome, TimeoutError) else type(outcome).__name__)
                else:
                    recorder.ok(outcome)
            if any(isinstance(outcome, BaseException) for outcome in outcomes):
                retired.add(idea)
            scores[idea] = target
        finally:
            busy.discard(idea)

    async with ctx.phase(f"propagation: subscribe to {len(watched)} ideas and warm up"):
        for idea in watched:
            scores[idea] = await score_now(idea)
            subscriptions[idea] = await ws.subscribe(WATCH, {"id": idea_gid(ds.ideas[idea].id)})
        await asyncio.sleep(0.5)
        await asyncio.gather(*(probe(idea, record=False) for idea in watched))

    async def tick_op(n: int) -> None:
        # At most `--probes` probes at a time: each one polls idea(id) until the new score shows,
        # and 8 pollers at once were a load of their own (hundreds of reads per second) that
        # slowed the very propagation they measured.
        free = [i for i in watched if i not in busy and i not in retired] if len(busy) < ctx.args.probes else []
        if free:
            await probe(ctx.rng.choice(free))
            return
        voter = ctx.voters[n % len(ctx.voters)]
        idea = pick_idea(ctx, voter, exclude=watched_set)
        if idea is None:
            background.error("NO_IDEA_LEFT")
            return
        t0 = time.perf_counter()
        try:
            await cast(ctx, voter, idea)
            background.ok(time.perf_counter() - t0)
        except RequestError as exc:
            background.error(exc.code)

    async with ctx.phase(
        f"propagation: castVote at {rate:,.0f}/s (half the write path's), {len(watched)} ideas watched", seconds
    ) as tick:
        started, skipped = await paced_loop(
            tick_op, rate=rate, duration=seconds, max_in_flight=4 * len(ctx.voters), on_progress=tick
        )
    await ws.close()
    for client in [*poll_clients.values(), *probe_clients.values()]:
        await client.aclose()
    await ctx.drain("propagation phase")
    target = f"p99 ≤ {PROPAGATION_P99_MS:.0f} ms"
    for name, recorder in (("poll idea(id)", poll_rec), ("ideaChanged subscription", sub_rec)):
        result = LoadResult.of(name, recorder, seconds)
        ctx.rows.append(
            rep.measured(
                "propagation",
                f"castVote answer → new score via {name}, at {rate:,.0f} votes/s",
                result,
                "probes/s",
                rate=result.ok / seconds,
                target=target,
                passed=result.ok > 0 and result.p99_ms <= PROPAGATION_P99_MS,
                client_cpu=False,
            )
        )
    for name, recorder in (("poll", poll_rec), ("subscription", sub_rec)):
        if recorder.errors:
            ctx.notes.append(f"propagation ({name}) errors by code: " + rep.by_code(recorder.errors))
    if skipped:
        ctx.notes.append(
            f"propagation phase: {skipped} of {started + skipped} paced votes skipped (too many in flight)"
        )
    if background.errors:
        ctx.notes.append("propagation phase background votes, errors by code: " + rep.by_code(background.errors))
