"""The served schema: the contract's types, the added API-key management, and the hardening
extensions (caches, limits, cost, error codes)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from graphql import ASTValidationRule, GraphQLError
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import (
    AddValidationRules,
    MaxTokensLimiter,
    ParserCache,
    SchemaExtension,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig

from gateway.context import GatewayContext
from gateway.errors import ErrorCodes, GatewaySchema
from gateway.limits import CostLimit, validation_rules
from gateway.schema.api_key import ApiKeyWithSecret
from gateway.schema.comment import Comment
from gateway.schema.idea import Idea
from gateway.schema.mutation import Mutation
from gateway.schema.query import Query
from gateway.schema.stakeholder import Stakeholder
from gateway.schema.subscription import Subscription
from gateway.settings import GatewaySettings

__all__ = ["build_schema"]


class SafeParserCache(ParserCache):
    """ParserCache that leaves syntax errors to strawberry's own parse step: raised from the
    extension hook they escape error handling (and over WebSocket the operation just ends)."""

    def on_parse(self) -> Iterator[None]:
        ctx = self.execution_context
        if ctx.query:
            try:
                ctx.graphql_document = self.cached_parse_document(ctx.query, **ctx.parse_options)
            except GraphQLError:
                ctx.graphql_document = None  # parsed again below, and reported as a request error
        yield


class FreshLoadersPerOperation(SchemaExtension):
    """A WebSocket connection keeps one context: give each operation on it fresh DataLoaders."""

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context.context
        if isinstance(context, GatewayContext) and context.websocket:
            context.reset_loaders()
        yield


def build_schema(settings: GatewaySettings | None = None) -> GatewaySchema:
    settings = settings or GatewaySettings()
    rules: list[type[ASTValidationRule]] = validation_rules(settings.max_depth, settings.max_aliases)
    if not settings.introspection_enabled:
        rules.append(NoSchemaIntrospectionCustomRule)
    extensions: list[Callable[[], SchemaExtension]] = [
        # first: sees the final result of every other extension
        ErrorCodes,
        lambda: MaxTokensLimiter(max_token_count=settings.max_tokens),
        lambda: AddValidationRules(rules),
        lambda: SafeParserCache(maxsize=settings.parser_cache_size),
        lambda: ValidationCache(maxsize=settings.validation_cache_size),
        lambda: CostLimit(settings.max_cost),
        FreshLoadersPerOperation,
    ]
    return GatewaySchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[Stakeholder, Idea, Comment, ApiKeyWithSecret],
        extensions=extensions,
        config=StrawberryConfig(
            disable_field_suggestions=True,
            batching_config={"max_operations": settings.max_batch_operations},
        ),
    )
