"""Gateway settings, read from the environment (pydantic-settings).

Every address and every limit is a setting; defaults suit `make run` on one machine."""

from __future__ import annotations

from pydantic import Field

from shared.settings import TokenSettings


class GatewaySettings(TokenSettings):
    service_name: str = "gateway"
    host: str = "127.0.0.1"
    port: int = 8000

    # The four services (env STAKEHOLDERS_URL, IDEAS_URL, VOTES_URL, COMMENTS_URL); several
    # instances of one service: comma-separated URLs, spread round-robin.
    stakeholders_url: str = "http://127.0.0.1:8001"
    ideas_url: str = "http://127.0.0.1:8002"
    votes_url: str = "http://127.0.0.1:8003"
    comments_url: str = "http://127.0.0.1:8004"
    # Every upstream call is bounded: a service that is down gives UNAVAILABLE, never a hang.
    upstream_timeout: float = Field(5.0, gt=0)
    upstream_connect_timeout: float = Field(2.0, gt=0)
    upstream_max_connections: int = 100

    # API keys (bearer tokens that are not JWTs) are exchanged for a short-lived JWT, cached this long.
    api_key_token_cache_seconds: float = 30.0
    api_key_token_cache_size: int = 10_000
    # Stakeholders (authors, voters) read from the stakeholders service are kept this long at most;
    # their change events make every gateway forget them sooner. 0 turns the cache off.
    stakeholder_cache_seconds: float = Field(30.0, ge=0)
    stakeholder_cache_size: int = Field(10_000, ge=1)

    # None: on in development only.
    graphiql: bool | None = None
    introspection: bool | None = None

    # Query limits.
    max_depth: int = 12
    max_aliases: int = 30
    max_tokens: int = 3000
    max_cost: int = 5000
    max_first: int = 100
    max_body_bytes: int = 256 * 1024
    max_batch_operations: int = 10
    max_subscriptions_per_connection: int = 20
    parser_cache_size: int = 512
    validation_cache_size: int = 512
    connection_init_wait_seconds: float = 10.0

    # Mutations per stakeholder: a token bucket (burst, then `rate` per second).
    mutation_rate_per_second: float = 10.0
    mutation_burst: int = 120
    # register/login per client address (anonymous), same scheme.
    anonymous_mutation_rate_per_second: float = 5.0
    anonymous_mutation_burst: int = 100

    # Subscriptions: queue size per subscriber (commentAdded; ideaChanged coalesces).
    subscription_queue_size: int = 256

    @property
    def graphiql_enabled(self) -> bool:
        return self.is_development if self.graphiql is None else self.graphiql

    @property
    def introspection_enabled(self) -> bool:
        return self.is_development if self.introspection is None else self.introspection
