"""The read path: pages of `ideas(...)` (first 20, every field a list view shows) by logged-in
readers, back to back, one phase per sort / segment / search; then the CPU per read of every
process."""

from __future__ import annotations

from bench import report as rep
from bench.context import Context
from bench.load import MAX_REQUESTS, GraphQLClient, LoadResult, RequestError, closed_loop
from bench.resources import GROUPS
from bench.seed import SEARCH_WORD

READ = (
    "query($sort: IdeaSort, $segment: StakeholderKind, $search: String) { ideas(first: 20, sort: $sort, "
    "segment: $segment, search: $search) { edges { node { id title score voters tally { kind voters weight } "
    "commentCount author { displayName } myVote { weight } } } } }"
)
READS = (
    ("ideas TOP", {"sort": "TOP"}),
    ("ideas TOP segment PARTNER", {"sort": "TOP", "segment": "PARTNER"}),
    ("ideas TRENDING", {"sort": "TRENDING"}),
    (f'ideas TOP search "{SEARCH_WORD}"', {"sort": "TOP", "search": SEARCH_WORD}),
)
# Targets (reported, not enforced).
READ_RATIO, READ_P99_MS = 0.40, 50.0


async def read_path(ctx: Context, ceiling: LoadResult) -> None:
    n, seconds = len(ctx.readers), ctx.args.duration
    clients = [GraphQLClient(ctx.url, token) for token in ctx.readers]
    mark = ctx.sampler.cpu_mark()
    reads = 0
    for name, variables in READS:
        body = GraphQLClient.body(READ, variables)

        async def read(worker: int, body: bytes = body) -> None:
            data = await clients[worker].post(body)
            if not data.get("ideas", {}).get("edges"):
                raise RequestError("EMPTY_PAGE")

        async with ctx.phase(f"read path: {name}, {n} clients", seconds) as tick:
            result = await closed_loop(
                name, read, concurrency=n, duration=seconds, max_requests=MAX_REQUESTS, on_progress=tick
            )
        reads += result.ok
        ctx.rows.append(
            rep.against_ceiling(
                "read",
                f"{name}, first 20, {n} clients",
                result,
                "req/s",
                ceiling="(b)",
                ceiling_rate=ceiling.rate,
                min_ratio=READ_RATIO,
                max_p99_ms=READ_P99_MS,
            )
        )
        if result.error_codes:
            ctx.notes.append(f"{name} errors by code: " + rep.by_code(result.error_codes))
    spent = ctx.sampler.cpu_since(mark)
    ctx.cpu_per_read = {name: spent.get(name, 0.0) / max(1, reads) * 1000 for name in GROUPS}
    for client in clients:
        await client.aclose()
