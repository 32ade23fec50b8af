"""Vote HTTP routes: thin; the use cases live in service.py."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request

from services.votes.domain import DEFAULT_WEIGHT
from services.votes.models import MineRequest, VoteCreate, VotePublic, WithdrawResponse
from services.votes.service import VoteService
from shared.auth import CurrentPrincipal, WriterPrincipal
from shared.db import read_only, transactional
from shared.pagination import Items
from shared.uow import UnitOfWork

router = APIRouter()


def _service(uow: UnitOfWork, _: Request) -> VoteService:
    return VoteService(uow)


# Service: on the request's transaction; ReadService: routes that only read (no transaction).
Service = Annotated[VoteService, Depends(transactional(_service))]
ReadService = Annotated[VoteService, Depends(read_only(_service))]


@router.put("/ideas/{idea_id}/vote", response_model=VotePublic)
async def cast_vote(
    idea_id: uuid.UUID, principal: WriterPrincipal, service: Service, body: VoteCreate | None = None
) -> VotePublic:
    return await service.cast(principal, idea_id, body.weight if body is not None else DEFAULT_WEIGHT)


@router.delete("/ideas/{idea_id}/vote", response_model=WithdrawResponse)
async def withdraw_vote(idea_id: uuid.UUID, principal: WriterPrincipal, service: Service) -> WithdrawResponse:
    return WithdrawResponse(removed=await service.withdraw(principal, idea_id))


@router.post("/votes/mine", response_model=Items[VotePublic])
async def my_votes(body: MineRequest, principal: CurrentPrincipal, service: ReadService) -> Items[VotePublic]:
    return Items(items=await service.mine(principal, body.idea_ids))
