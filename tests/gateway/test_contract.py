"""The served schema keeps the public contract (the repo's copy `shared/api/schema.graphql` of the
handbook's ../shared/api/schema.graphql): nothing the contract names may be renamed, removed or
retyped, and its argument defaults stay. What is served of version 2 (`shared/api/v2.graphql`)
is exactly as written there."""

from __future__ import annotations

from pathlib import Path

from graphql import (
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    build_schema,
    print_ast,
)
from graphql.utilities import find_breaking_changes, find_dangerous_changes
from graphql.utilities.find_schema_changes import DangerousChangeType

from gateway.export_schema import DEFAULT_PATH, served_sdl
from gateway.schema import build_schema as build_gateway_schema
from gateway.settings import GatewaySettings

REPO_ROOT = Path(__file__).resolve().parents[2]
CONTRACT = REPO_ROOT / "shared" / "api" / "schema.graphql"
V2 = REPO_ROOT / "shared" / "api" / "v2.graphql"


def served() -> GraphQLSchema:
    return build_gateway_schema(GatewaySettings())._schema


def contract() -> GraphQLSchema:
    return build_schema(CONTRACT.read_text(encoding="utf-8"))


def test_no_breaking_changes_against_the_contract() -> None:
    changes = find_breaking_changes(contract(), served())
    assert changes == [], "\n".join(f"{c.type.name}: {c.description}" for c in changes)


def test_contract_defaults_are_kept() -> None:
    kept = {DangerousChangeType.ARG_DEFAULT_VALUE_CHANGE, DangerousChangeType.INPUT_FIELD_DEFAULT_VALUE_CHANGE}
    changes = [c for c in find_dangerous_changes(contract(), served()) if c.type in kept]
    assert changes == [], "\n".join(c.description for c in changes)


def test_exported_sdl_is_the_served_schema() -> None:
    assert DEFAULT_PATH.read_text(encoding="utf-8") == served_sdl(), (
        "gateway/schema.graphql is stale: run `python -m gateway.export_schema`"
    )


def test_exported_sdl_has_no_breaking_changes_either() -> None:
    exported = build_schema(DEFAULT_PATH.read_text(encoding="utf-8"))
    assert find_breaking_changes(contract(), exported) == []


def _parts(schema: GraphQLSchema) -> dict[str, str]:
    """Every field and argument as SDL writes it: "Type.field" -> its type, "Type.field(arg)" ->
    its type and default. Both schemas are read from SDL, so defaults compare as written."""
    out: dict[str, str] = {}
    for name, type_ in schema.type_map.items():
        if name.startswith("__"):
            continue
        if isinstance(type_, GraphQLObjectType | GraphQLInterfaceType):
            for field_name, field in type_.fields.items():
                out[f"{name}.{field_name}"] = str(field.type)
                for arg_name, arg in field.args.items():
                    default = arg.ast_node.default_value if arg.ast_node is not None else None
                    out[f"{name}.{field_name}({arg_name})"] = f"{arg.type} = {print_ast(default) if default else ''}"
        elif isinstance(type_, GraphQLInputObjectType):
            for field_name, input_field in type_.fields.items():
                default = input_field.ast_node.default_value if input_field.ast_node is not None else None
                out[f"{name}.{field_name}"] = f"{input_field.type} = {print_ast(default) if default else ''}"
    return out


def test_what_is_served_of_v2_is_exactly_v2() -> None:
    """A v2 field or argument that is served has v2's type and default; what is not built yet is
    absent, and what the gateway adds beyond v2 is allowed."""
    v2 = _parts(build_schema(V2.read_text(encoding="utf-8")))
    served_parts = _parts(build_schema(served_sdl()))
    differ = [
        f"{k}: served {served_parts[k]!r}, v2 {v2[k]!r}" for k in v2 if k in served_parts and served_parts[k] != v2[k]
    ]
    assert differ == [], "\n".join(differ)
