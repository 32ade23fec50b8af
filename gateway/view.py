"""strawberry's own ASGI app, adapted: orjson, the typed per-request context, auth on the
WebSocket connection_init, and GraphQL-shaped errors (with a code) for requests strawberry
refuses before execution (bad JSON, wrong body shape, too many batched operations...)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson
from cross_web import HTTPException
from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError, MissingQueryError
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.schema.base import BaseSchema
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler
from strawberry.subscriptions.protocols.graphql_transport_ws.types import SubscribeMessage
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType
from strawberry.types.unset import UNSET, UnsetType

from gateway.context import GatewayContext, Runtime
from gateway.errors import coded_error
from gateway.settings import GatewaySettings
from shared.logs import get_logger
from shared.problems import Problem, error_for_status

log = get_logger("gateway.view")


def error_body(message: str, code: str, **extensions: Any) -> bytes:
    return orjson.dumps({"data": None, "errors": [{"message": message, "extensions": {"code": code, **extensions}}]})


def error_response(status: int, message: str, code: str | None = None) -> Response:
    code = code or error_for_status(status).contract_code
    return Response(error_body(message, code), status_code=status, media_type="application/json")


class GatewayWSHandler(BaseGraphQLTransportWSHandler[GatewayContext, None]):
    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        limit = self.max_subscriptions_per_connection
        if (
            self.connection_acknowledged
            and limit is not None
            and len(self.operations) >= limit
            and message["id"] not in self.operations
        ):
            error = GraphQLError(
                f"at most {limit} subscriptions per connection",
                extensions={"code": "RATE_LIMITED", "retryable": False},
            )
            await self.send_message({"id": message["id"], "type": "error", "payload": [error.formatted]})
            return
        await super().handle_subscribe(message)


class GatewayGraphQL(GraphQL[GatewayContext, None]):
    graphql_transport_ws_handler_class = GatewayWSHandler

    def __init__(self, schema: BaseSchema, settings: GatewaySettings) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql" if settings.graphiql_enabled else None,
            allow_queries_via_get=True,
            subscription_protocols=[GRAPHQL_TRANSPORT_WS_PROTOCOL],
            connection_init_wait_timeout=timedelta(seconds=settings.connection_init_wait_seconds),
            max_subscriptions_per_connection=settings.max_subscriptions_per_connection,
        )
        self.settings = settings
        self.runtime: Runtime | None = None  # set by the app's lifespan

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope=scope, receive=receive)
        try:
            response = await self.run(request)
        except HTTPException as exc:
            response = error_response(exc.status_code, exc.reason)
        except Exception:  # never a stack trace to the client
            log.exception("graphql_request_failed")
            response = error_response(500, "internal error", "INTERNAL")
        await response(scope, receive, send)

    # --- JSON ---------------------------------------------------------------------------------
    def decode_json(self, data: str | bytes) -> object:
        return orjson.loads(data)

    def encode_json(self, data: object) -> str:
        # text, not bytes: WebSocket clients expect text frames
        return orjson.dumps(data).decode()

    async def parse_http_body(self, request_adapter: Any) -> GraphQLRequestData | list[GraphQLRequestData]:
        try:
            return await super().parse_http_body(request_adapter)
        except (AttributeError, TypeError) as exc:
            raise HTTPException(
                400, "the body must be a JSON object {query, variables?, operationName?} or a list of them"
            ) from exc

    async def execute_single(
        self,
        request: Request,
        request_adapter: Any,
        sub_response: Response,
        context: GatewayContext,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        # strawberry allows subscriptions over HTTP (for its multipart/SSE transports, which
        # are not enabled here) and would run them as a query: WebSocket only.
        allowed = OperationType.from_http(request_adapter.method) - {OperationType.SUBSCRIPTION}
        if request_adapter.method == "GET":
            allowed -= {OperationType.MUTATION}
        try:
            return await self.schema.execute(
                request_data.query,
                root_value=root_value,
                variable_values=request_data.variables,
                context_value=context,
                operation_name=request_data.operation_name,
                allowed_operation_types=allowed,
                operation_extensions=request_data.extensions,
            )
        except CannotGetOperationTypeError as exc:
            raise HTTPException(400, exc.as_http_error_reason()) from exc
        except InvalidOperationTypeError as exc:
            if exc.operation_type == OperationType.SUBSCRIPTION:
                raise HTTPException(400, "subscriptions are served over WebSocket (graphql-transport-ws)") from exc
            raise HTTPException(400, exc.as_http_error_reason(request_adapter.method)) from exc
        except MissingQueryError as exc:
            raise HTTPException(400, "No GraphQL query found in the request") from exc

    # --- context and auth ---------------------------------------------------------------------
    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket) -> GatewayContext:
        if self.runtime is None:
            raise RuntimeError("the gateway is not started (lifespan did not run)")
        client = request.client
        return GatewayContext(
            self.runtime,
            authorization=request.headers.get("authorization"),
            client_address=client.host if client else None,
            request=request,
            response=response,
            websocket=isinstance(request, WebSocket),
        )

    async def on_ws_connect(self, context: GatewayContext) -> UnsetType | dict[str, object] | None:
        params = context.connection_params or {}
        authorization = next(
            (v for k, v in params.items() if isinstance(k, str) and k.lower() == "authorization"), None
        )
        if authorization is not None:
            if not isinstance(authorization, str):
                raise ConnectionRejectionError({"code": "UNAUTHENTICATED", "message": "Authorization must be a string"})
            context.set_authorization(authorization)
        try:
            await context.principal()
        except Problem as problem:
            raise ConnectionRejectionError({"code": problem.code, "message": problem.detail}) from problem
        unset: UnsetType = UNSET
        return unset

    # --- results ------------------------------------------------------------------------------
    async def process_result(self, request: Request, result: ExecutionResult) -> GraphQLHTTPResponse:
        if result.errors:
            result.errors = [coded_error(error) for error in result.errors]
        return await super().process_result(request, result)
