"""Idea HTTP routes: thin; the use cases live in service.py."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from services.ideas.models import (
    IdeaCreate,
    IdeaPublic,
    IdeaRevisionPublic,
    IdeaSort,
    IdeaUpdate,
    IdsRequest,
    MergeRequest,
    StatusRequest,
)
from services.ideas.service import IdeaService
from shared.auth import OptionalPrincipal, WriterPrincipal
from shared.db import read_only, transactional
from shared.events.catalogue import IdeaStatus, StakeholderKind
from shared.pagination import Items, Page, check_page_size
from shared.uow import UnitOfWork

router = APIRouter()


def _service(uow: UnitOfWork, _: Request) -> IdeaService:
    return IdeaService(uow)


# Service: on the request's transaction; ReadService: routes that only read (no transaction).
Service = Annotated[IdeaService, Depends(transactional(_service))]
ReadService = Annotated[IdeaService, Depends(read_only(_service))]


@router.post("/ideas", status_code=201, response_model=IdeaPublic)
async def propose(body: IdeaCreate, principal: WriterPrincipal, service: Service) -> IdeaPublic:
    return await service.propose(principal, body)


@router.get("/ideas", response_model=Page[IdeaPublic])
async def list_ideas(
    service: ReadService,
    principal: OptionalPrincipal,
    first: int = 20,
    after: Annotated[str | None, Query(max_length=1_000)] = None,
    sort: IdeaSort = IdeaSort.TOP,
    status: Annotated[list[IdeaStatus] | None, Query()] = None,
    tag: Annotated[str | None, Query(max_length=100)] = None,
    search: Annotated[str | None, Query(max_length=1_000)] = None,
    segment: StakeholderKind | None = None,
    with_total: bool = True,
) -> Page[IdeaPublic]:
    return await service.list_ideas(
        principal,
        first=check_page_size(first),
        after=after,
        sort=sort,
        statuses=status,
        tag=tag,
        search=search,
        segment=segment,
        with_total=with_total,
    )


# Declared before /ideas/{idea_id} so "similar" and "batch" are not read as ids.
@router.get("/ideas/similar", response_model=Items[IdeaPublic])
async def similar(
    service: ReadService,
    principal: OptionalPrincipal,
    text: Annotated[str, Query(max_length=25_000)],
    first: int = 5,
) -> Items[IdeaPublic]:
    return Items(items=await service.similar(principal, text, first))


@router.post("/ideas/batch", response_model=Items[IdeaPublic])
async def batch(body: IdsRequest, service: ReadService, principal: OptionalPrincipal) -> Items[IdeaPublic]:
    return Items(items=await service.batch(principal, body.ids))


@router.get("/ideas/{idea_id}", response_model=IdeaPublic)
async def get_one(idea_id: uuid.UUID, service: ReadService, principal: OptionalPrincipal) -> IdeaPublic:
    return await service.get(principal, idea_id)


@router.patch("/ideas/{idea_id}", response_model=IdeaPublic)
async def refine(idea_id: uuid.UUID, body: IdeaUpdate, principal: WriterPrincipal, service: Service) -> IdeaPublic:
    return await service.refine(principal, idea_id, body)


@router.get("/ideas/{idea_id}/revisions", response_model=Items[IdeaRevisionPublic])
async def revisions(
    idea_id: uuid.UUID, service: ReadService, principal: OptionalPrincipal
) -> Items[IdeaRevisionPublic]:
    return Items(items=await service.revisions(principal, idea_id))


@router.post("/ideas/{idea_id}/status", response_model=IdeaPublic)
async def set_status(
    idea_id: uuid.UUID, body: StatusRequest, principal: WriterPrincipal, service: Service
) -> IdeaPublic:
    return await service.set_status(principal, idea_id, body.status, body.note)


@router.post("/ideas/{idea_id}/merge", response_model=IdeaPublic)
async def merge(idea_id: uuid.UUID, body: MergeRequest, principal: WriterPrincipal, service: Service) -> IdeaPublic:
    return await service.merge(principal, idea_id, body.target_id)
