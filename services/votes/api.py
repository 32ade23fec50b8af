"""Vote HTTP routes: thin; the use cases live in service.py."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from services.votes.domain import DEFAULT_WEIGHT
from services.votes.models import MineRequest, VoteCreate, VotePublic, WithdrawResponse
from services.votes.service import VoteService
from shared.auth import CurrentPrincipal, WriterPrincipal
from shared.db import service_dependencies
from shared.pagination import Items

router = APIRouter()


# Service: on the request's transaction; ReadService: routes that only read (no transaction).
Service, ReadService = service_dependencies(lambda session, _: VoteService(session))


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
