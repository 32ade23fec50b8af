"""Comment HTTP routes: thin; the use cases live in service.py."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from services.comments.models import (
    ByIdeasRequest,
    ByIdeasResponse,
    CommentCreate,
    CommentPublic,
    FlagRequest,
    FlagResponse,
    HideRequest,
    IdsRequest,
)
from services.comments.service import CommentService
from shared.auth import OptionalPrincipal, WriterPrincipal
from shared.db import read_only, transactional
from shared.pagination import Items, Page
from shared.uow import UnitOfWork

router = APIRouter()


def _service(uow: UnitOfWork, _: Request) -> CommentService:
    return CommentService(uow)


# Service: on the request's transaction; ReadService: routes that only read (no transaction).
Service = Annotated[CommentService, Depends(transactional(_service))]
ReadService = Annotated[CommentService, Depends(read_only(_service))]


@router.post("/ideas/{idea_id}/comments", status_code=201, response_model=CommentPublic)
async def add_comment(
    idea_id: uuid.UUID, body: CommentCreate, principal: WriterPrincipal, service: Service
) -> CommentPublic:
    return await service.add(principal, idea_id, body)


@router.get("/ideas/{idea_id}/comments", response_model=Page[CommentPublic])
async def list_comments(
    idea_id: uuid.UUID,
    principal: OptionalPrincipal,
    service: ReadService,
    first: Annotated[int, Query()] = 20,
    after: Annotated[str | None, Query(max_length=512)] = None,
) -> Page[CommentPublic]:
    return await service.list_for_idea(principal, idea_id, first, after)


@router.post("/comments/by-ideas", response_model=ByIdeasResponse)
async def comments_by_ideas(
    body: ByIdeasRequest, principal: OptionalPrincipal, service: ReadService
) -> ByIdeasResponse:
    return ByIdeasResponse(pages=await service.by_ideas(principal, body.idea_ids, body.first))


@router.post("/comments/batch", response_model=Items[CommentPublic])
async def batch(body: IdsRequest, principal: OptionalPrincipal, service: ReadService) -> Items[CommentPublic]:
    return Items(items=await service.get_many(principal, body.ids))


@router.get("/comments/{comment_id}", response_model=CommentPublic)
async def get_comment(comment_id: uuid.UUID, principal: OptionalPrincipal, service: ReadService) -> CommentPublic:
    return await service.get(principal, comment_id)


@router.post("/comments/{comment_id}/hide", response_model=CommentPublic)
async def hide(comment_id: uuid.UUID, body: HideRequest, principal: WriterPrincipal, service: Service) -> CommentPublic:
    return await service.hide(principal, comment_id, body.reason)


@router.post("/comments/{comment_id}/flags", response_model=FlagResponse)
async def flag(comment_id: uuid.UUID, body: FlagRequest, principal: WriterPrincipal, service: Service) -> FlagResponse:
    return FlagResponse(flagged=await service.flag(principal, comment_id, body.reason))
