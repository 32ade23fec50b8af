"""Settings common to every process, read from the environment by pydantic-settings.

Every address is a setting. Defaults point at the embedded servers that `make run` starts on
ports chosen not to collide with a PostgreSQL on 5432 or a NATS on 4222.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

EMBEDDED_PG_PORT = 55432
EMBEDDED_NATS_PORT = 54222


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", case_sensitive=False)

    environment: str = Field("development", description="development | production")
    log_level: str = "INFO"
    log_json: bool = True
    nats_url: str = f"nats://127.0.0.1:{EMBEDDED_NATS_PORT}"
    # Base URL of the PostgreSQL server; each service uses its own database on it unless
    # DATABASE_URL names one explicitly.
    pg_url: str = f"postgresql://postgres@127.0.0.1:{EMBEDDED_PG_PORT}"
    # JetStream stream replicas: 1 on one machine, 3 on a NATS cluster (R3).
    nats_stream_replicas: int = 1
    # OpenTelemetry: spans are always created and propagated; exported only when enabled.
    otel_exporter_enabled: bool = False
    otel_exporter_otlp_endpoint: str = "http://127.0.0.1:4318"

    @property
    def is_development(self) -> bool:
        return self.environment == "development"


class TokenSettings(CommonSettings):
    """How a process checks access tokens (every service and the gateway)."""

    # Where the stakeholder service publishes its public keys (comma-separated: any instance),
    # and optionally a PEM public key configured directly (then nothing is fetched).
    jwks_url: str = "http://127.0.0.1:8001/.well-known/jwks.json"
    jwt_public_key: str | None = None
    jwt_issuer: str = "co-creation-platform"
    jwt_audience: str = "co-creation-platform"


class ServiceSettings(TokenSettings):
    """Settings of one domain service. `service_name` is fixed by each service's subclass."""

    service_name: str = "service"
    host: str = "127.0.0.1"
    port: int = 8000
    database_url: str | None = None
    # A steady pool: overflow connections are opened and closed per request under load (a
    # PostgreSQL backend fork each time); callers beyond the pool wait for a connection instead.
    db_pool_size: int = 20
    db_max_overflow: int = 0
    # Check each pooled connection before use (one extra round trip per checkout). Off, a
    # connection killed by a database restart fails one request with a retryable 503.
    db_pool_pre_ping: bool = False
    # Behind a transaction-mode pooler (PgBouncer): asyncpg must not cache prepared statements.
    db_transaction_pooler: bool = False
    # Outbox relay and consumers
    relay_poll_interval: float = 1.0
    relay_batch_size: int = 256
    consumer_batch_size: int = 100
    consumer_max_deliver: int = 10
    # A message handed to an instance that then dies is redelivered after this long.
    consumer_ack_wait: float = 10.0
    # Sent outbox rows and inbox rows are deleted once older than this: the streams' duplicate
    # window (600 s, shared/messaging.py) plus an hour (shared/outbox.py prune_messaging: why).
    messaging_retention_seconds: float = Field(4200.0, gt=600.0)
    messaging_prune_interval: float = 300.0

    def resolved_database_url(self) -> str:
        """SQLAlchemy URL (asyncpg driver) of this service's own database."""
        url = self.database_url or f"{self.pg_url.rstrip('/')}/{self.service_name}"
        return to_asyncpg_url(url)


def to_asyncpg_url(url: str) -> str:
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    return url


def to_plain_pg_url(url: str) -> str:
    """libpq-style URL (for asyncpg.connect and psql) from any of the accepted forms."""
    return "postgresql://" + to_asyncpg_url(url)[len("postgresql+asyncpg://") :]
