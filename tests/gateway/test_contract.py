"""The served schema keeps the public contract (../shared/api/schema.graphql): nothing the
contract names may be renamed, removed or retyped, and its argument defaults stay."""

from __future__ import annotations

from pathlib import Path

from graphql import GraphQLSchema, build_schema
from graphql.utilities import find_breaking_changes, find_dangerous_changes
from graphql.utilities.find_schema_changes import DangerousChangeType

from gateway.export_schema import DEFAULT_PATH, served_sdl
from gateway.schema import build_schema as build_gateway_schema
from gateway.settings import GatewaySettings

REPO_ROOT = Path(__file__).resolve().parents[2]
CONTRACT = REPO_ROOT.parent / "shared" / "api" / "schema.graphql"


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
