"""Floors: what one part of a path costs even if everything around it were free, so a ratio
target can be checked for feasibility on this machine and not only missed.

The read floor is graphql-core alone executing the bench's read query over an in-memory answer
(default resolvers over dicts: no HTTP, no strawberry, no upstream call, no database). Any Python
GraphQL gateway pays at least this per page; 2 cores divided by it bound the read rate."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from graphql import (
    GraphQLEnumType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    OperationDefinitionNode,
    SelectionSetNode,
    build_schema,
    default_field_resolver,
    execute,
    parse,
)
from graphql.language import FieldNode

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_FILE = ROOT / "gateway" / "schema.graphql"
SCALARS: dict[str, Any] = {
    "Int": 7,
    "Float": 1.5,
    "Boolean": True,
    "ID": "SWRlYTowMTkzZjY2Ny0wMDAwLTcwMDAtODAwMC0wMDAwMDAwMDAwMDA=",
    "String": "Offline mode for the mobile app",
    "DateTime": "2026-11-25T12:00:00+00:00",
}


def _answer(schema: GraphQLSchema, type_: GraphQLOutputType, selection: SelectionSetNode | None, page: int) -> Any:
    """A value of `type_` with every selected field filled: lists of `page` items (the
    connection's edges) or of 4 (nested lists such as tally)."""
    if isinstance(type_, GraphQLNonNull):
        return _answer(schema, type_.of_type, selection, page)
    if isinstance(type_, GraphQLList):
        return [_answer(schema, type_.of_type, selection, 4) for _ in range(page)]
    if isinstance(type_, GraphQLEnumType):
        return next(iter(type_.values))
    if isinstance(type_, GraphQLObjectType):
        out: dict[str, Any] = {}
        for node in selection.selections if selection else ():
            if isinstance(node, FieldNode) and node.name.value != "__typename":
                field = type_.fields[node.name.value]
                out[node.alias.value if node.alias else node.name.value] = _answer(
                    schema, field.type, node.selection_set, page
                )
        return out
    return SCALARS.get(getattr(type_, "name", ""), "x")


def graphql_execution_floor(
    query: str, variables: dict[str, Any], page: int = 20, rounds: int = 200
) -> tuple[float, int]:
    """(CPU ms per execution, fields resolved per execution) for graphql-core alone running
    `query` (one operation, on Query) over an in-memory answer with `page` items per list."""
    schema = build_schema(SCHEMA_FILE.read_text())
    document = parse(query)
    operation = next(d for d in document.definitions if isinstance(d, OperationDefinitionNode))
    query_type = schema.query_type
    assert query_type is not None
    root = _answer(schema, query_type, operation.selection_set, page)
    fields = 0

    def counting(source: Any, info: Any, **args: Any) -> Any:
        nonlocal fields
        fields += 1
        return default_field_resolver(source, info, **args)

    result = execute(schema, document, root, variable_values=variables, field_resolver=counting)
    if result.errors:
        raise ValueError(f"the floor query does not execute: {result.errors[0]}")
    start = time.process_time()
    for _ in range(rounds):
        execute(schema, document, root, variable_values=variables)
    return (time.process_time() - start) * 1000 / rounds, fields


def floor_notes(
    postgres_ms_per_vote: float | None,
    ceilings: Mapping[str, float],
    read_query: str,
    write_ratio: float,
    read_ratio: float,
) -> list[str]:
    """Whether a ratio target can be met on this machine at all: the best rate each path
    could reach if everything but one part of it cost nothing."""
    cores = os.cpu_count() or 1
    notes = []
    if postgres_ms_per_vote and ceilings.get("ceiling (a)"):
        best = cores * 1000 / postgres_ms_per_vote
        notes.append(
            f"floor (write): PostgreSQL alone spends {postgres_ms_per_vote:.2f} ms CPU per vote (the vote and its "
            f"outbox row, the relay, the projections); with every Python process free, {cores} cores allow at most "
            f"{best:,.0f} votes/s = {best / ceilings['ceiling (a)']:.2f} x ceiling (a) (target {write_ratio:.2f})"
        )
    if ceilings.get("ceiling (b)"):
        ms, fields = graphql_execution_floor(read_query, {"sort": "TOP"})
        best = cores * 1000 / ms
        notes.append(
            f"floor (read): graphql-core alone executing the read query ({fields} fields, over in-memory data) "
            f"costs {ms:.2f} ms CPU per page; with HTTP, strawberry, the services and PostgreSQL free, {cores} "
            f"cores allow at most {best:,.0f} pages/s = {best / ceilings['ceiling (b)']:.2f} x ceiling (b) "
            f"(target {read_ratio:.2f})"
        )
    return notes
