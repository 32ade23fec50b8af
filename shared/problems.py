"""One error type for every service: `Problem`, rendered as RFC 9457 application/problem+json.

`code` uses the same vocabulary as the public GraphQL contract's `extensions.code`, so the
gateway passes it through unchanged."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.logs import get_logger

PROBLEM_JSON = "application/problem+json"


@dataclass(frozen=True)
class ErrorKind:
    """One row of the error table: a code, the HTTP status services answer it with, whether a
    client may retry it as it is, and the public contract's code a client of the gateway sees."""

    code: str
    status: int
    retryable: bool = False
    public: str | None = None  # None: the code is itself one of the contract's

    @property
    def contract_code(self) -> str:
        return self.public or self.code


# THE error table: services answer these (problem+json `code`), the gateway passes them on as
# GraphQL `extensions.code` (../shared/api/schema.graphql lists the public ones).
ERRORS: tuple[ErrorKind, ...] = (
    ErrorKind("BAD_USER_INPUT", 400),
    ErrorKind("UNAUTHENTICATED", 401),
    ErrorKind("FORBIDDEN", 403),
    ErrorKind("NOT_FOUND", 404),
    ErrorKind("CONFLICT", 409),
    ErrorKind("PAYLOAD_TOO_LARGE", 413, public="BAD_USER_INPUT"),
    ErrorKind("RATE_LIMITED", 429, retryable=True),
    ErrorKind("INTERNAL", 500),
    ErrorKind("UNAVAILABLE", 503, retryable=True),
)
ERROR_BY_CODE: dict[str, ErrorKind] = {e.code: e for e in ERRORS}
CONTRACT_CODES = frozenset(e.contract_code for e in ERRORS)
_BY_STATUS = {e.status: e for e in ERRORS}


def error_for_code(code: object) -> ErrorKind | None:
    return ERROR_BY_CODE.get(code) if isinstance(code, str) else None


def error_for_status(status: int) -> ErrorKind:
    """What an HTTP status stands for when no code says: the table's, else BAD_USER_INPUT for any
    other 4xx (405, 415, 422...) and INTERNAL for any other 5xx."""
    return _BY_STATUS.get(status) or ERROR_BY_CODE["BAD_USER_INPUT" if status < 500 else "INTERNAL"]


class Problem(Exception):
    def __init__(self, code: str, detail: str, *, status: int | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        known = ERROR_BY_CODE.get(code)
        self.status = status or (known.status if known is not None else 400)
        self.extra = extra

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": f"urn:problem:{self.code.lower()}",
            "title": self.code.replace("_", " ").capitalize(),
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
            **self.extra,
        }


def bad_input(detail: str, **extra: Any) -> Problem:
    return Problem("BAD_USER_INPUT", detail, **extra)


def storable_text(value: str, field: str) -> str:
    """`value` if PostgreSQL text can hold it. NUL characters and lone surrogates cannot be
    stored: refused as BAD_USER_INPUT at the edge instead of failing in the database."""
    if "\x00" in value:
        raise bad_input(f"{field} must not contain NUL characters", field=field)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise bad_input(f"{field} is not valid Unicode text", field=field) from exc
    return value


def not_found(what: str) -> Problem:
    return Problem("NOT_FOUND", f"{what} not found")


def conflict(detail: str) -> Problem:
    return Problem("CONFLICT", detail)


def forbidden(detail: str = "not allowed") -> Problem:
    return Problem("FORBIDDEN", detail)


def unauthenticated(detail: str = "authentication required") -> Problem:
    return Problem("UNAUTHENTICATED", detail)


def problem_response(problem: Problem) -> Response:
    headers = {}
    if problem.code == "UNAUTHENTICATED":
        headers["WWW-Authenticate"] = "Bearer"
    if "retry_after" in problem.extra:
        headers["Retry-After"] = str(int(problem.extra["retry_after"]))
    return Response(
        orjson.dumps(problem.to_dict()), status_code=problem.status, media_type=PROBLEM_JSON, headers=headers
    )


def is_unavailable(exc: BaseException) -> bool:
    """A database or broker that cannot be reached: retryable, not a bug."""
    import asyncpg
    from sqlalchemy import exc as sa_exc

    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated or isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError):
            return True
        return is_unavailable(exc.orig) if exc.orig is not None else False
    if isinstance(exc, sa_exc.TimeoutError):  # connection pool exhausted
        return True
    return isinstance(
        exc,
        OSError
        | TimeoutError
        | ConnectionError
        | asyncpg.PostgresConnectionError
        | asyncpg.exceptions.CannotConnectNowError
        | asyncpg.InterfaceError,
    )


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at the request's path (`app.state.route_methods`: a list
    of (path template, compiled path regex, methods), set by the app factory). A route without
    parameters that matches names the resource: `/ideas/batch` is not `/ideas/{idea_id}`."""
    table = getattr(request.app.state, "route_methods", None) or []
    path = request.scope.get("path", "")
    matches = [(template, methods) for template, regex, methods in table if regex.match(path)]
    static = [(template, methods) for template, methods in matches if "{" not in template]
    return sorted({m for _, methods in (static or matches) for m in methods})


# PostgreSQL errors caused by a value the caller sent, not by the server's state: the request
# is refused (400), never answered 500 (which a client, or the gateway, takes for an outage).
INPUT_SQLSTATES = {
    "22021": "the text contains a character that cannot be stored (NUL)",  # character_not_in_repertoire
    "22P05": "the text contains a character that cannot be stored",  # untranslatable_character
    "22001": "a value is too long",  # string_data_right_truncation
}


def sqlstate_of(exc: BaseException) -> str | None:
    """The SQLSTATE of a database error (SQLAlchemy wraps asyncpg's), else None."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        state = getattr(current, "sqlstate", None)
        if isinstance(state, str):
            return state
        current = getattr(current, "orig", None) or current.__cause__
    return None


def unexpected_response(exc: BaseException) -> Response:
    """The answer to an exception no handler knows: the caller's bad input (the database refused
    a value), a dependency that is down (503, retryable), or a bug (500, logged, masked)."""
    log = get_logger("problems")
    state = sqlstate_of(exc)
    if state in INPUT_SQLSTATES:
        log.warning("input_refused_by_database", sqlstate=state)
        return problem_response(Problem("BAD_USER_INPUT", INPUT_SQLSTATES[state]))
    if is_unavailable(exc):
        log.warning("dependency_unavailable", error=repr(exc))
        return problem_response(Problem("UNAVAILABLE", "a dependency is unavailable; retry later", retry_after=1))
    log.error("unhandled_error", exc_info=exc)
    return problem_response(Problem("INTERNAL", "internal error"))


class UnexpectedErrorMiddleware:
    """Answers unexpected exceptions *inside* the app. Left to Starlette's ServerErrorMiddleware
    (where an `Exception` handler runs) the exception is re-raised after the answer, and uvicorn
    then closes the keep-alive connection: the gateway's next request on it, someone else's,
    failed with a ReadError (UNAVAILABLE) 9 times out of 10."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as exc:
            if started:
                raise
            await unexpected_response(exc)(scope, receive, send)


E = TypeVar("E", bound=Exception)


def _on(app: FastAPI, kind: type[E], handler: Callable[[Request, E], Awaitable[Response]]) -> None:
    """Register `handler` for `kind` (Starlette calls a handler only for its own exception type)."""

    async def handle(request: Request, exc: Exception) -> Response:
        return await handler(request, cast(E, exc))

    app.add_exception_handler(kind, handle)


def install_problem_handlers(app: FastAPI) -> None:
    async def on_problem(_: Request, exc: Problem) -> Response:
        return problem_response(exc)

    async def on_validation(_: Request, exc: RequestValidationError) -> Response:
        errors = [{"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))} for e in exc.errors()]
        detail = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors) or "invalid request"
        return problem_response(Problem("BAD_USER_INPUT", detail, status=422, errors=errors))

    async def on_http(request: Request, exc: StarletteHTTPException) -> Response:
        code = error_for_status(exc.status_code).code
        response = problem_response(Problem(code, str(exc.detail), status=exc.status_code))
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        if exc.status_code == 405:
            # `Allow` must list every method of the resource (RFC 9110); Starlette names only
            # those of the first route whose path matched.
            allowed = allowed_methods(request)
            if allowed:
                response.headers["Allow"] = ", ".join(allowed)
        return response

    async def on_unexpected(_: Request, exc: Exception) -> Response:
        return unexpected_response(exc)

    _on(app, Problem, on_problem)
    _on(app, RequestValidationError, on_validation)
    _on(app, StarletteHTTPException, on_http)
    _on(app, Exception, on_unexpected)
