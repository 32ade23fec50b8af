"""The two ceilings, measured on the same machine in the same run, that the write and read
ratios are taken against: (a) raw PostgreSQL inserts of vote-like rows, (b) `{ __typename }`
through the gateway. Plus the sanity check of both against the handbook's figures."""

from __future__ import annotations

import uuid

import asyncpg

from bench import report as rep
from bench.context import Context
from bench.load import MAX_REQUESTS, GraphQLClient, LoadResult, closed_loop

# The handbook's measured facts (same kind of 2-core machine): sanity references.
HANDBOOK_PG_TPS, HANDBOOK_TYPENAME_RPS = 9_000, 2_200
HANDBOOK_PG_INSERT = "pgbench INSERT … ON CONFLICT 8,000-10,000 tps"
HANDBOOK_TYPENAME = "strawberry ASGI, trivial query ~2,200 req/s"


async def postgres(ctx: Context) -> LoadResult:
    """Ceiling (a): INSERT … ON CONFLICT DO NOTHING into a scratch database, one connection per
    client, back to back."""
    n, seconds = ctx.args.ceiling_clients, ctx.args.duration
    admin = await asyncpg.connect(f"{ctx.pg_url}/postgres")
    await admin.execute("DROP DATABASE IF EXISTS bench_scratch")
    await admin.execute("CREATE DATABASE bench_scratch")
    pool = await asyncpg.create_pool(f"{ctx.pg_url}/bench_scratch", min_size=n, max_size=n)
    try:
        await pool.execute(
            "CREATE TABLE scratch_vote (idea_id uuid NOT NULL, voter_id uuid NOT NULL, weight smallint NOT NULL,"
            " voter_kind varchar NOT NULL, cast_at timestamptz NOT NULL, updated_at timestamptz NOT NULL,"
            " PRIMARY KEY (idea_id, voter_id))"
        )
        await pool.execute("CREATE INDEX ix_scratch_vote_voter ON scratch_vote (voter_id)")
        connections = [await pool.acquire() for _ in range(n)]
        sql = (
            "INSERT INTO scratch_vote (idea_id, voter_id, weight, voter_kind, cast_at, updated_at) "
            "VALUES ($1, $2, $3, $4, now(), now()) ON CONFLICT DO NOTHING"
        )
        kinds = ("CUSTOMER", "SUPPLIER", "PARTNER", "EMPLOYEE")

        async def insert(worker: int) -> None:
            await connections[worker].execute(sql, uuid.uuid4(), uuid.uuid4(), 1 + worker % 3, kinds[worker % 4])

        async with ctx.phase(f"ceiling (a): PostgreSQL INSERT … ON CONFLICT, {n} connections", seconds) as tick:
            result = await closed_loop(
                "pg insert", insert, concurrency=n, duration=seconds, max_requests=MAX_REQUESTS, on_progress=tick
            )
        for conn in connections:
            await pool.release(conn)
    finally:
        await pool.close()
        await admin.execute("DROP DATABASE IF EXISTS bench_scratch")
        await admin.close()
    ctx.rows.append(
        rep.measured(
            "ceiling (a)",
            f"PostgreSQL INSERT … ON CONFLICT DO NOTHING, {n} connections",
            result,
            "rows/s",
            reference=HANDBOOK_PG_INSERT,
        )
    )
    return result


async def gateway(ctx: Context) -> LoadResult:
    """Ceiling (b): the cheapest GraphQL request, anonymous, one connection per client."""
    n, seconds = ctx.args.ceiling_clients, ctx.args.duration
    clients = [GraphQLClient(ctx.url) for _ in range(n)]
    body = GraphQLClient.body("{ __typename }")

    async def typename(worker: int) -> None:
        await clients[worker].post(body)

    async with ctx.phase(f"ceiling (b): {{ __typename }} through the gateway, {n} clients", seconds) as tick:
        result = await closed_loop(
            "typename", typename, concurrency=n, duration=seconds, max_requests=MAX_REQUESTS, on_progress=tick
        )
    for client in clients:
        await client.aclose()
    ctx.rows.append(
        rep.measured(
            "ceiling (b)",
            f"{{ __typename }} through the gateway, {n} clients",
            result,
            "req/s",
            reference=HANDBOOK_TYPENAME,
        )
    )
    return result


def sanity_notes(rows: list[rep.Row]) -> list[str]:
    """Each ceiling against the handbook's figure for the same kind of machine."""
    notes = []
    for row in rows:
        if row.phase == "ceiling (a)" and row.rate:
            notes.append(
                f"sanity: ceiling (a) is {row.rate / HANDBOOK_PG_TPS:.2f} x the handbook's "
                f"~{HANDBOOK_PG_TPS:,} tps (pgbench INSERT … ON CONFLICT, same kind of machine)"
            )
        if row.phase == "ceiling (b)" and row.rate:
            notes.append(
                f"sanity: ceiling (b) is {row.rate / HANDBOOK_TYPENAME_RPS:.2f} x the handbook's "
                f"~{HANDBOOK_TYPENAME_RPS:,} req/s (strawberry's ASGI app, trivial query); here the load generator "
                f"(httpx, {row.client_cpu_ms or 0:.2f} ms CPU per request) shares the 2 cores with the gateway"
            )
    return notes
