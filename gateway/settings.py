"""Gateway settings, read from the environment (pydantic-settings).

Every address and every limit is a setting; defaults suit `make run` on one machine."""

from __future__ import annotations

from pydantic import Field, model_validator

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

    # Rate limits (gateway/ratelimit.py, the `limits` library's moving window). Mutations per
    # stakeholder: at most `mutation_burst` in any `mutation_burst / mutation_rate_per_second`
    # seconds (rounded up to whole seconds; defaults: 120 in any 12 s). A fresh caller may spend
    # the burst at once and is then held to the rate: a refused call's retryAfter is when its
    # oldest counted mutation leaves the window. (The hand-rolled token bucket this replaces gave
    # tokens back continuously; a moving window gives each one back a window after it was spent,
    # so a burst spent at once comes back at once. Same burst, same long-run rate.)
    mutation_rate_per_second: float = Field(10.0, gt=0)
    mutation_burst: int = Field(120, ge=1)
    # register/login per client address (anonymous), same scheme (defaults: 100 in any 20 s).
    anonymous_mutation_rate_per_second: float = Field(5.0, gt=0)
    anonymous_mutation_burst: int = Field(100, ge=1)
    # Gateway replicas that count the limits each in its own memory (RATE_LIMIT_REPLICAS): each
    # enforces 1/n of every burst (rounded down, at least 1), so n replicas behind one load
    # balancer, which sees each client's calls spread over them, together enforce the limit
    # rather than n times it. deploy/k8s sets it to the gateway's HPA minReplicas (more pods
    # under load loosen the limits in proportion). 1 with a shared store (below).
    rate_limit_replicas: int = Field(1, ge=1)
    # Where the counts live, in `limits`' URI syntax (RATE_LIMIT_STORAGE_URI): `memory://` (this
    # process), or a store every replica shares, e.g. `redis://redis:6379/0` (`rediss://`,
    # `redis+sentinel://`, `redis+cluster://` too): exact limits across any number of replicas,
    # with RATE_LIMIT_REPLICAS=1. If it is unreachable, calls pass (logged) rather than fail.
    rate_limit_storage_uri: str = "memory://"

    # Subscriptions: queue size per subscriber (commentAdded; ideaChanged coalesces).
    subscription_queue_size: int = 256

    @model_validator(mode="after")
    def _one_count_per_shared_store(self) -> GatewaySettings:
        if self.rate_limit_replicas > 1 and not self.rate_limit_storage_uri.startswith("memory://"):
            raise ValueError(
                "RATE_LIMIT_REPLICAS divides the limits among replicas counting in memory; with the shared "
                f"store {self.rate_limit_storage_uri} the whole limit applies across them: set it to 1"
            )
        return self

    @property
    def graphiql_enabled(self) -> bool:
        return self.is_development if self.graphiql is None else self.graphiql

    @property
    def introspection_enabled(self) -> bool:
        return self.is_development if self.introspection is None else self.introspection
