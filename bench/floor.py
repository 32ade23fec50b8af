"""Floors: what one part of a path costs even if everything around it were free, so a ratio
target can be checked for feasibility on this machine and not only missed.

The read floor is graphql-core alone executing the bench's read query over an in-memory answer
(default resolvers over dicts: no HTTP, no strawberry, no upstream call, no database). Any Python
GraphQL gateway pays at least this per page; 2 cores divided by it bound the read rate."""

from __future__ import annotations

import time
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
