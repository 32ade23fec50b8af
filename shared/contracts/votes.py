"""What the votes service answers."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel


class VotePublic(BaseModel):
    idea_id: uuid.UUID
    voter_id: uuid.UUID
    # 1 nice to have, 2 important, 3 must have.
    weight: int
    # When the vote was first cast (a weight change keeps it).
    cast_at: datetime


class WithdrawResponse(BaseModel):
    removed: bool
