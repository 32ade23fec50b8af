"""Every GraphQL error leaves the gateway with `extensions.code` from the contract's list.

- A `Problem` (from a service answer or raised by a resolver) keeps its code and detail
  (RATE_LIMITED adds `retryAfter`; the error table's retryable codes add `retryable`).
- Errors in the request itself (syntax, validation, limits, variables) are BAD_USER_INPUT.
- Anything else is a bug: logged with its traceback, and sent as INTERNAL "internal error" with
  no message, trace or SQL from the original."""

from __future__ import annotations

import math
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import MaskErrors
from strawberry.types import ExecutionContext

from shared.logs import get_logger
from shared.problems import CONTRACT_CODES, ERROR_BY_CODE, Problem, error_for_code

INTERNAL_MESSAGE = "internal error"
log = get_logger("gateway.errors")


def _original(error: GraphQLError) -> BaseException | None:
    original: BaseException | None = error.original_error
    while isinstance(original, GraphQLError) and original.original_error is not None:
        original = original.original_error
    return original


def _problem_extensions(problem: Problem) -> tuple[str, dict[str, Any]]:
    """`extensions` from the error table: the contract's code, and `retryable` where it is."""
    kind = error_for_code(problem.code) or ERROR_BY_CODE["BAD_USER_INPUT"]
    code = kind.contract_code
    extensions: dict[str, Any] = {"code": code}
    retry_after = problem.extra.get("retry_after")
    if code == "RATE_LIMITED" and retry_after is not None:
        extensions["retryAfter"] = max(1, math.ceil(float(retry_after)))
    if kind.retryable:
        extensions["retryable"] = True
    return code, extensions


def _with(error: GraphQLError, message: str, extensions: dict[str, Any]) -> GraphQLError:
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=None,
        extensions=extensions,
    )


def classify(error: GraphQLError) -> str:
    """The contract code an error will carry."""
    existing = (error.extensions or {}).get("code")
    if existing in CONTRACT_CODES:
        return str(existing)
    original = _original(error)
    if isinstance(original, Problem):
        return _problem_extensions(original)[0]
    if error.path is None and (
        original is None or isinstance(original, GraphQLError) or error.message.startswith("Variable '$")
    ):
        return "BAD_USER_INPUT"
    return "INTERNAL"


def coded_error(error: GraphQLError) -> GraphQLError:
    """The error as the client sees it (idempotent)."""
    existing = (error.extensions or {}).get("code")
    if existing in CONTRACT_CODES:
        return error
    original = _original(error)
    if isinstance(original, Problem):
        code, extensions = _problem_extensions(original)
        message = INTERNAL_MESSAGE if code == "INTERNAL" else original.detail
        return _with(error, message, extensions)
    code = classify(error)
    if code == "INTERNAL":
        return _with(error, INTERNAL_MESSAGE, {"code": "INTERNAL"})
    return _with(error, error.message, {**(error.extensions or {}), "code": code})


class ErrorCodes(MaskErrors):
    """strawberry's MaskErrors (which also covers streamed subscription results), mapping every
    error to a coded one instead of masking them all."""

    def __init__(self) -> None:
        super().__init__(error_message=INTERNAL_MESSAGE)

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        return [coded_error(error) for error in errors]


class GatewaySchema(strawberry.Schema):
    """Logs errors by kind (strawberry's default logs every one with a traceback)."""

    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        for error in errors:
            code = classify(error)
            original = _original(error)
            path = ".".join(str(p) for p in error.path) if error.path else None
            if code == "INTERNAL":
                log.error("graphql_internal_error", path=path, message=error.message, exc_info=original)
            elif code == "UNAVAILABLE":
                log.warning("graphql_upstream_unavailable", path=path, message=error.message)
            else:
                log.debug("graphql_error", code=code, path=path, message=error.message)
