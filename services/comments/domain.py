"""Comment rules as pure functions: plain data in, decisions and events out.

Decisions written down here:
- Visibility follows the idea's: empty `visible_to` is public (anonymous readers too);
  otherwise the listed kinds, the idea's author, PRODUCT_TEAM and ADMIN. Everything else
  reads as "not found" (no leak).
- Comments are accepted on every idea that is not MERGED: SHIPPED and DECLINED ideas stay
  open for discussion (a declined idea can be reopened; people thank the team for a shipped
  one). A MERGED idea refuses them with CONFLICT: the discussion moves to the target.
- A body is 1..10,000 characters as given, not blank once surrounding whitespace is stripped,
  and stored exactly as given (inert text). NUL and unpaired surrogates cannot be stored as
  PostgreSQL text: refused as BAD_USER_INPUT instead of failing later.
- A reason (hide, flag) is stripped and must then have 1..500 characters.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from shared.auth import Principal
from shared.events.catalogue import CommentAdded, CommentHidden, IdeaStatus
from shared.problems import bad_input, conflict, storable_text

MAX_BODY = 10_000
MAX_REASON = 500


def is_moderator(viewer: Principal | None) -> bool:
    return viewer is not None and viewer.is_moderator


def is_official(author: Principal) -> bool:
    """Written by PRODUCT_TEAM or ADMIN: the official answer."""
    return author.is_staff


def check_body(body: str) -> str:
    """The body, unchanged, when it may be stored."""
    if not 1 <= len(body) <= MAX_BODY:
        raise bad_input(f"body must have 1 to {MAX_BODY:,} characters", field="body")
    if not body.strip():
        raise bad_input("body must not be blank", field="body")
    storable_text(body, "body")
    return body


def clean_reason(reason: str) -> str:
    value = reason.strip()
    if not 1 <= len(value) <= MAX_REASON:
        raise bad_input(f"reason must have 1 to {MAX_REASON} characters", field="reason")
    storable_text(value, "reason")
    return value


def check_accepts_comments(status: str) -> None:
    if status == IdeaStatus.MERGED:
        raise conflict("the idea was merged into another; comment there")


def check_parent(idea_id: uuid.UUID, parent_idea_id: uuid.UUID) -> None:
    """A reply stays in its thread: the parent must be a comment on the same idea."""
    if parent_idea_id != idea_id:
        raise bad_input("parent_id is a comment on another idea", field="parent_id")


def visible_body(body: str, hidden: bool, viewer: Principal | None) -> str:
    """Hidden comments keep their place; their body reads as empty except for moderators."""
    return "" if hidden and not is_moderator(viewer) else body


def comment_added(
    comment_id: uuid.UUID,
    idea_id: uuid.UUID,
    author_id: uuid.UUID,
    parent_id: uuid.UUID | None,
    official: bool,
    created_at: datetime,
) -> CommentAdded:
    return CommentAdded(
        comment_id=comment_id,
        idea_id=idea_id,
        author_id=author_id,
        parent_id=parent_id,
        official=official,
        created_at=created_at,
    )


def hide(
    comment_id: uuid.UUID, idea_id: uuid.UUID, already_hidden: bool, reason: str, hidden_by: uuid.UUID
) -> CommentHidden | None:
    """The event for hiding a comment; None when it is hidden already (hiding is idempotent:
    the first reason stays and no second event is published)."""
    if already_hidden:
        return None
    return CommentHidden(comment_id=comment_id, idea_id=idea_id, reason=reason, hidden_by=hidden_by)
