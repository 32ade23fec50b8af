"""Stakeholder HTTP routes: thin; the use cases live in service.py."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from services.stakeholders.models import (
    ApiKeyCreate,
    ApiKeyPublic,
    ApiKeyTokenRequest,
    ApiKeyWithSecret,
    AuthResponse,
    IdsRequest,
    LoginRequest,
    RevokeResponse,
    RoleRequest,
    StakeholderCreate,
    StakeholderPublic,
    StakeholderUpdate,
    TokenResponse,
)
from services.stakeholders.service import Keyring, Passwords, StakeholderService
from shared.auth import AdminPrincipal, CurrentPrincipal, SessionWriterPrincipal, WriterPrincipal
from shared.db import read_only, transactional
from shared.pagination import Items, check_page_size
from shared.problems import Problem, problem_response
from shared.uow import UnitOfWork

router = APIRouter()


def _service(uow: UnitOfWork, request: Request) -> StakeholderService:
    keyring: Keyring = request.app.state.keyring
    passwords: Passwords = request.app.state.passwords
    return StakeholderService(uow, keyring, passwords)


# Service: on the request's transaction; ReadService: routes that only read (no transaction).
Service = Annotated[StakeholderService, Depends(transactional(_service))]
ReadService = Annotated[StakeholderService, Depends(read_only(_service))]


@router.post("/stakeholders", status_code=201, response_model=AuthResponse)
async def register(body: StakeholderCreate, service: Service) -> AuthResponse:
    return await service.register(body)


@router.post("/auth/login", response_model=AuthResponse)
async def login(body: LoginRequest, service: Service) -> Any:
    result = await service.login(body.email, body.password)
    if isinstance(result, Problem):
        return problem_response(result)
    return result


@router.get("/stakeholders/me", response_model=StakeholderPublic)
async def me(principal: CurrentPrincipal, service: ReadService) -> StakeholderPublic:
    return await service.get(principal.id)


@router.patch("/stakeholders/me", response_model=StakeholderPublic)
async def update_me(body: StakeholderUpdate, principal: WriterPrincipal, service: Service) -> StakeholderPublic:
    return await service.update_profile(principal, body)


@router.post("/stakeholders/batch", response_model=Items[StakeholderPublic])
async def batch(body: IdsRequest, service: ReadService) -> Items[StakeholderPublic]:
    return Items(items=await service.get_many(body.ids))


@router.get("/stakeholders/{stakeholder_id}", response_model=StakeholderPublic)
async def get_one(stakeholder_id: uuid.UUID, service: ReadService) -> StakeholderPublic:
    return await service.get(stakeholder_id)


@router.post("/stakeholders/{stakeholder_id}/role", response_model=StakeholderPublic)
async def grant_role(
    stakeholder_id: uuid.UUID, body: RoleRequest, principal: AdminPrincipal, service: Service
) -> StakeholderPublic:
    return await service.grant_role(principal, stakeholder_id, body.role)


@router.get("/experts", response_model=Items[StakeholderPublic])
async def experts(
    service: ReadService, tag: Annotated[str, Query(max_length=40)], first: Annotated[int, Query()] = 10
) -> Items[StakeholderPublic]:
    return Items(items=await service.experts(tag, check_page_size(first)))


@router.get("/.well-known/jwks.json")
async def jwks(request: Request) -> Response:
    keyring: Keyring = request.app.state.keyring
    return Response(
        orjson.dumps(keyring.jwks()), media_type="application/json", headers={"Cache-Control": "public, max-age=300"}
    )


@router.post("/api-keys", status_code=201, response_model=ApiKeyWithSecret)
async def create_api_key(body: ApiKeyCreate, principal: SessionWriterPrincipal, service: Service) -> ApiKeyWithSecret:
    return await service.create_api_key(principal, body)


@router.get("/api-keys", response_model=Items[ApiKeyPublic])
async def list_api_keys(principal: CurrentPrincipal, service: ReadService) -> Items[ApiKeyPublic]:
    return Items(items=await service.list_api_keys(principal))


@router.delete("/api-keys/{key_id}", response_model=RevokeResponse)
async def revoke_api_key(key_id: uuid.UUID, principal: SessionWriterPrincipal, service: Service) -> RevokeResponse:
    return RevokeResponse(revoked=await service.revoke_api_key(principal, key_id))


@router.post("/auth/api-key-token", response_model=TokenResponse)
async def api_key_token(body: ApiKeyTokenRequest, service: Service) -> TokenResponse:
    return TokenResponse(token=await service.token_for_api_key(body.key))
