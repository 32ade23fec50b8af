"""Integrator API keys."""

from __future__ import annotations

from datetime import datetime

import strawberry

from gateway.ids import encode_global_id
from gateway.schema.enums import ApiKeyScope
from shared.contracts.stakeholders import ApiKeyPublic
from shared.contracts.stakeholders import ApiKeyWithSecret as ApiKeyWithSecretModel


@strawberry.type(description="An integrator API key. Its secret is shown only once, when it is created.")
class ApiKey:
    id: strawberry.ID
    label: str
    scope: ApiKeyScope
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def from_model(cls, m: ApiKeyPublic) -> ApiKey:
        return cls(
            id=strawberry.ID(encode_global_id("ApiKey", m.id)),
            label=m.label,
            scope=m.scope,
            created_at=m.created_at,
            revoked_at=m.revoked_at,
        )


@strawberry.type(description="A new API key with its secret: use it as 'Authorization: Bearer <secret>'. Shown once.")
class ApiKeyWithSecret(ApiKey):
    secret: str

    @classmethod
    def with_secret(cls, m: ApiKeyWithSecretModel) -> ApiKeyWithSecret:
        key = ApiKey.from_model(m)
        return cls(
            id=key.id,
            label=key.label,
            scope=key.scope,
            created_at=key.created_at,
            revoked_at=key.revoked_at,
            secret=m.secret,
        )
