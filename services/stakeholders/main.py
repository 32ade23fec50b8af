"""The stakeholder service: accounts, roles, kinds, JWT issuing (JWKS), API keys, experts."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI
from pydantic import Field

from services.stakeholders.api import router
from services.stakeholders.consumers import SUBSCRIPTIONS
from services.stakeholders.service import Keyring, Passwords, StakeholderService
from shared.app import Runtime, create_service_app
from shared.logs import get_logger
from shared.settings import ServiceSettings
from shared.uow import UnitOfWork


class Settings(ServiceSettings):
    service_name: str = "stakeholders"
    port: int = 8001
    access_token_ttl_seconds: int = 3600
    # PEM (PKCS8) Ed25519 private key; when unset the key is generated once and kept in the DB.
    jwt_private_key: str | None = None
    bootstrap_admin_email: str | None = None
    bootstrap_admin_password: str | None = None
    # argon2id costs (argon2-cffi's defaults, RFC 9106's second recommendation).
    password_hash_time_cost: int = Field(3, ge=1)
    password_hash_memory_kib: int = Field(65_536, ge=8)
    password_hash_parallelism: int = Field(4, ge=1)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    async def on_startup(app: FastAPI, runtime: Runtime) -> None:
        keyring = Keyring(settings.jwt_issuer, settings.jwt_audience, settings.access_token_ttl_seconds)
        await keyring.load(runtime.sessionmaker, settings.jwt_private_key)
        app.state.keyring = keyring
        app.state.jwt_verifier = keyring.verifier()
        passwords = await asyncio.to_thread(
            Passwords,
            settings.password_hash_time_cost,
            settings.password_hash_memory_kib,
            settings.password_hash_parallelism,
        )
        app.state.passwords = passwords
        if settings.bootstrap_admin_email and settings.bootstrap_admin_password:
            async with runtime.sessionmaker() as session:
                uow = UnitOfWork(session)
                await StakeholderService(uow, keyring, passwords).ensure_admin(
                    settings.bootstrap_admin_email, settings.bootstrap_admin_password
                )
                await uow.commit()
            get_logger("bootstrap").info("bootstrap_admin_ensured", email=settings.bootstrap_admin_email)

    return create_service_app(settings=settings, routers=[router], subscriptions=SUBSCRIPTIONS, on_startup=on_startup)
