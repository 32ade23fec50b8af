"""Request limits: depth, aliases and tokens (strawberry's rules), and a cost limit.

Cost = for every field that takes a `first` argument (connections and lists), the product of
the `first` values on the path down to it, itself included, summed over the document: a page
of 50 ideas with 20 comments each costs 50 + 50*20 = 1050. Values come from literals,
variables, or the schema's defaults. Over `max_cost` the operation is refused with
BAD_USER_INPUT before anything is resolved. Variables are known only at execution, so this
runs in `on_execute` (validation results stay cacheable)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from graphql import (
    ASTValidationRule,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    value_from_ast_untyped,
)
from graphql import ExecutionResult as GraphQLExecutionResult
from graphql.utilities import get_operation_ast
from strawberry.extensions import SchemaExtension
from strawberry.extensions.max_aliases import create_validator as create_alias_validator
from strawberry.extensions.query_depth_limiter import create_validator as create_depth_validator
from strawberry.types.graphql import OperationType

from shared.problems import Problem

# Do not count below this: a pathological document could otherwise make the count itself slow.
_MAX_WALK = 100_000


def validation_rules(max_depth: int, max_aliases: int) -> list[type[ASTValidationRule]]:
    """Built once per schema so the rule classes stay the same objects from request to request
    (ValidationCache keys on them)."""
    return [create_depth_validator(max_depth, None), create_alias_validator(max_aliases)]


class CostError(Exception):
    pass


def _int_value(arg_value: Any, variables: dict[str, Any]) -> int | None:
    if isinstance(arg_value, VariableNode):
        value = variables.get(arg_value.name.value)
    else:
        value = value_from_ast_untyped(arg_value, variables)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class CostCounter:
    def __init__(
        self, schema: GraphQLSchema, document_fragments: dict[str, FragmentDefinitionNode], variables: dict[str, Any]
    ) -> None:
        self.schema = schema
        self.fragments = document_fragments
        self.variables = variables
        self.visited = 0

    def selection_set(
        self, selection_set: SelectionSetNode | None, parent: Any, multiplier: int, spread: frozenset[str]
    ) -> int:
        if selection_set is None:
            return 0
        total = 0
        for selection in selection_set.selections:
            self.visited += 1
            if self.visited > _MAX_WALK:
                raise CostError("the operation is too large")
            if isinstance(selection, FieldNode):
                total += self.field(selection, parent, multiplier, spread)
            elif isinstance(selection, InlineFragmentNode):
                type_ = (
                    self.schema.get_type(selection.type_condition.name.value) if selection.type_condition else parent
                )
                total += self.selection_set(selection.selection_set, type_ or parent, multiplier, spread)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if fragment is None or name in spread:
                    continue
                type_ = self.schema.get_type(fragment.type_condition.name.value) or parent
                total += self.selection_set(fragment.selection_set, type_, multiplier, spread | {name})
        return total

    def field(self, node: FieldNode, parent: Any, multiplier: int, spread: frozenset[str]) -> int:
        name = node.name.value
        if name.startswith("__") or not isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
            return 0
        definition = parent.fields.get(name)
        if definition is None:
            return 0
        cost = 0
        first_arg = definition.args.get("first")
        if first_arg is not None:
            given = next((a.value for a in node.arguments or () if a.name.value == "first"), None)
            first = _int_value(given, self.variables) if given is not None else None
            if first is None:  # not given, or null: the resolvers use the schema's default
                default = first_arg.default_value
                first = default if isinstance(default, int) and not isinstance(default, bool) else 1
            multiplier *= max(1, first)
            cost += multiplier
        return cost + self.selection_set(node.selection_set, get_named_type(definition.type), multiplier, spread)


def operation_cost(
    schema: GraphQLSchema, document: Any, operation_name: str | None, variables: dict[str, Any] | None
) -> int:
    operation = get_operation_ast(document, operation_name)
    if not isinstance(operation, OperationDefinitionNode):
        return 0
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    variables = dict(variables or {})
    for definition in operation.variable_definitions or ():
        var = definition.variable.name.value
        if var not in variables and definition.default_value is not None:
            variables[var] = value_from_ast_untyped(definition.default_value, {})
    root = {
        "query": schema.query_type,
        "mutation": schema.mutation_type,
        "subscription": schema.subscription_type,
    }[operation.operation.value]
    return CostCounter(schema, fragments, variables).selection_set(operation.selection_set, root, 1, frozenset())


class CostLimit(SchemaExtension):
    def __init__(self, max_cost: int) -> None:
        super().__init__()
        self.max_cost = max_cost

    def on_execute(self) -> Iterator[None]:
        ctx = self.execution_context
        if ctx.graphql_document is not None:
            try:
                cost = operation_cost(ctx.schema._schema, ctx.graphql_document, ctx.operation_name, ctx.variables)
                message = (
                    None
                    if cost <= self.max_cost
                    else (
                        f"query cost {cost} exceeds the limit of {self.max_cost} (cost: the product of `first` "
                        "arguments down nested lists, summed); ask for smaller pages"
                    )
                )
            except CostError as exc:
                message = str(exc)
            if message is not None:
                if ctx.operation_type == OperationType.SUBSCRIPTION:
                    # the subscription path turns an exception here into an error result
                    raise Problem("BAD_USER_INPUT", message)
                error = GraphQLError(message, extensions={"code": "BAD_USER_INPUT"})
                ctx.result = GraphQLExecutionResult(data=None, errors=[error])
        yield
