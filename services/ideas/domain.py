"""Idea rules as pure functions: plain data in, decisions and events out (no session, no NATS)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache

from shared.auth import Principal
from shared.events.catalogue import (
    IdeaMerged,
    IdeaProposed,
    IdeaRefined,
    IdeaStatus,
    IdeaStatusChanged,
    StakeholderKind,
    VoteCast,
    VoteChanged,
    VotesMoved,
    VoteWithdrawn,
)
from shared.problems import bad_input, conflict, forbidden, storable_text

MAX_TITLE = 140
MAX_BODY = 20_000
MAX_TAGS = 10
MAX_NOTE = 2_000
TAG_RE = re.compile(r"^[a-z0-9-]{1,40}$")
KINDS: tuple[StakeholderKind, ...] = tuple(StakeholderKind)  # enum order: the tally's order

# Trending: score gained over the last TRENDING_DAYS UTC days (today included).
TRENDING_DAYS = 7

# The status workflow. MERGED is reached only through a merge, never through a status change.
TRANSITIONS: Mapping[IdeaStatus, frozenset[IdeaStatus]] = {
    IdeaStatus.OPEN: frozenset({IdeaStatus.UNDER_REVIEW, IdeaStatus.DECLINED, IdeaStatus.MERGED}),
    IdeaStatus.UNDER_REVIEW: frozenset({IdeaStatus.PLANNED, IdeaStatus.DECLINED, IdeaStatus.OPEN, IdeaStatus.MERGED}),
    IdeaStatus.PLANNED: frozenset({IdeaStatus.IN_PROGRESS, IdeaStatus.DECLINED}),
    IdeaStatus.IN_PROGRESS: frozenset({IdeaStatus.SHIPPED, IdeaStatus.PLANNED}),
    IdeaStatus.DECLINED: frozenset({IdeaStatus.OPEN}),
    IdeaStatus.MERGED: frozenset(),
    IdeaStatus.SHIPPED: frozenset(),
}


# --- input ---------------------------------------------------------------------------------
def clean_title(title: str) -> str:
    value = storable_text(title, "title").strip()
    if not 1 <= len(value) <= MAX_TITLE:
        raise bad_input(f"title must have 1 to {MAX_TITLE} characters", field="title")
    return value


def clean_body(body: str) -> str:
    value = storable_text(body, "body").strip()
    if not 1 <= len(value) <= MAX_BODY:
        raise bad_input(f"body must have 1 to {MAX_BODY} characters", field="body")
    return value


def clean_tags(tags: Iterable[str] | None) -> list[str]:
    """Strip, lower-case and de-duplicate (first occurrence kept); at most MAX_TAGS remain."""
    out: list[str] = []
    for tag in tags or []:
        value = tag.strip().lower()
        if not TAG_RE.match(value):
            raise bad_input("each tag has 1 to 40 characters of [a-z0-9-]", field="tags")
        if value not in out:
            out.append(value)
    if len(out) > MAX_TAGS:
        raise bad_input(f"at most {MAX_TAGS} tags", field="tags")
    return out


def clean_tag_filter(tag: str) -> str:
    value = tag.strip().lower()
    if not TAG_RE.match(value):
        raise bad_input("tag has 1 to 40 characters of [a-z0-9-]", field="tag")
    return value


def clean_visible_to(kinds: Iterable[StakeholderKind] | None) -> list[StakeholderKind]:
    """De-duplicated, in enum order. Empty: everyone (anonymous readers included)."""
    chosen = {StakeholderKind(k) for k in kinds or []}
    return [k for k in KINDS if k in chosen]


def clean_note(note: str | None) -> str | None:
    if note is None:
        return None
    value = storable_text(note, "note").strip()
    if len(value) > MAX_NOTE:
        raise bad_input(f"note must have at most {MAX_NOTE} characters", field="note")
    return value or None


# --- who may do what (who may see: shared.visibility) ---------------------------------------
def check_can_refine(principal: Principal, author_id: uuid.UUID, status: IdeaStatus) -> None:
    if not (principal.is_staff or principal.id == author_id):
        raise forbidden("only the author, PRODUCT_TEAM or ADMIN refine an idea")
    if status == IdeaStatus.MERGED:
        raise conflict("a merged idea cannot be refined")


def check_staff(principal: Principal, action: str) -> None:
    if not principal.is_staff:
        raise forbidden(f"only PRODUCT_TEAM or ADMIN {action}")


def check_transition(current: IdeaStatus, new: IdeaStatus) -> None:
    """A status change through the status endpoint: only the moves TRANSITIONS allows, and never
    to MERGED (that is what a merge does)."""
    if new == IdeaStatus.MERGED:
        raise conflict("use merge to mark an idea MERGED")
    if new not in TRANSITIONS[current]:
        raise conflict(f"an idea cannot move from {current} to {new}")


def check_merge(
    source_id: uuid.UUID, source_status: IdeaStatus, target_id: uuid.UUID, target_status: IdeaStatus
) -> None:
    if source_id == target_id:
        raise conflict("an idea cannot be merged into itself")
    if target_status == IdeaStatus.MERGED:
        raise conflict("cannot merge into a MERGED idea")
    if IdeaStatus.MERGED not in TRANSITIONS[source_status]:
        raise conflict(f"a {source_status} idea cannot be merged")


# --- events ----------------------------------------------------------------------------------
def proposed_event(
    idea_id: uuid.UUID,
    author_id: uuid.UUID,
    title: str,
    tags: list[str],
    visible_to: list[StakeholderKind],
    created_at: datetime,
) -> IdeaProposed:
    return IdeaProposed(
        idea_id=idea_id,
        author_id=author_id,
        title=title,
        tags=tags,
        visible_to=visible_to,
        status=IdeaStatus.OPEN,
        created_at=created_at,
    )


def refined_event(idea_id: uuid.UUID, version: int, editor_id: uuid.UUID, title: str, tags: list[str]) -> IdeaRefined:
    return IdeaRefined(idea_id=idea_id, version=version, editor_id=editor_id, title=title, tags=tags)


def status_changed_event(
    idea_id: uuid.UUID, current: IdeaStatus, new: IdeaStatus, note: str | None, changed_by: uuid.UUID
) -> IdeaStatusChanged:
    return IdeaStatusChanged(idea_id=idea_id, from_status=current, to_status=new, note=note, changed_by=changed_by)


def merged_event(source_id: uuid.UUID, target_id: uuid.UUID, merged_by: uuid.UUID) -> IdeaMerged:
    return IdeaMerged(idea_id=source_id, target_id=target_id, merged_by=merged_by)


# --- tally projection ------------------------------------------------------------------------
@dataclass(frozen=True)
class TallyDelta:
    """A change to one idea's tally from one stakeholder kind. Deltas commute."""

    idea_id: uuid.UUID
    kind: StakeholderKind
    voters: int
    weight: int


def cast_deltas(event: VoteCast) -> list[TallyDelta]:
    return [TallyDelta(event.idea_id, event.voter_kind, 1, event.weight)]


def changed_deltas(event: VoteChanged) -> list[TallyDelta]:
    return [TallyDelta(event.idea_id, event.voter_kind, 0, event.new_weight - event.old_weight)]


def withdrawn_deltas(event: VoteWithdrawn) -> list[TallyDelta]:
    return [TallyDelta(event.idea_id, event.voter_kind, -1, -event.weight)]


def moved_deltas(event: VotesMoved) -> list[TallyDelta]:
    """Each move takes the voter's vote off the source; on the target it is a new vote (no vote
    there before) or a change of the voter's weight there (the higher weight is kept)."""
    out: list[TallyDelta] = []
    for move in event.moves:
        out.append(TallyDelta(event.source_id, move.voter_kind, -1, -move.source_weight))
        if move.target_old_weight is None:
            out.append(TallyDelta(event.target_id, move.voter_kind, 1, move.target_new_weight))
        else:
            out.append(TallyDelta(event.target_id, move.voter_kind, 0, move.target_new_weight - move.target_old_weight))
    return out


@dataclass(frozen=True)
class IdeaTallyChange:
    """All deltas of one event for one idea, summed: totals and per kind."""

    idea_id: uuid.UUID
    voters: int
    weight: int
    by_kind: dict[StakeholderKind, tuple[int, int]]  # kind -> (voters, weight)


def sum_deltas(deltas: Iterable[TallyDelta]) -> list[IdeaTallyChange]:
    """Per idea, in id order (so concurrent handlers lock rows in the same order)."""
    per_idea: dict[uuid.UUID, dict[StakeholderKind, tuple[int, int]]] = {}
    for d in deltas:
        kinds = per_idea.setdefault(d.idea_id, {})
        v, w = kinds.get(d.kind, (0, 0))
        kinds[d.kind] = (v + d.voters, w + d.weight)
    return [
        IdeaTallyChange(
            idea_id=idea_id,
            voters=sum(v for v, _ in kinds.values()),
            weight=sum(w for _, w in kinds.values()),
            by_kind={k: kinds[k] for k in KINDS if k in kinds},
        )
        for idea_id, kinds in sorted(per_idea.items(), key=lambda item: item[0].bytes)
    ]


@cache  # called for every kind of every idea on every page
def voters_column(kind: StakeholderKind) -> str:
    return f"voters_{StakeholderKind(kind).value.lower()}"


@cache
def weight_column(kind: StakeholderKind) -> str:
    return f"weight_{StakeholderKind(kind).value.lower()}"


def tally(counts: Mapping[str, int]) -> list[tuple[StakeholderKind, int, int]]:
    """(kind, voters, weight) for the kinds with voters, in enum order, from the idea's columns."""
    out = []
    for kind in KINDS:
        voters = counts[voters_column(kind)]
        if voters > 0:
            out.append((kind, voters, counts[weight_column(kind)]))
    return out


# --- trending --------------------------------------------------------------------------------
def score_day(at: datetime) -> date:
    """The UTC day a score change counts for."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC).date()


def window_start(now: datetime) -> date:
    """The first day still inside the trending window at `now` (today and the 6 days before)."""
    return score_day(now) - timedelta(days=TRENDING_DAYS - 1)


def in_window(day: date, now: datetime) -> bool:
    return window_start(now) <= day <= score_day(now) + timedelta(days=1)  # a day of clock skew allowed
