"""Stakeholder rules as pure functions: plain data in, decisions and events out."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.auth import Scope
from shared.events.catalogue import Role, RoleGranted, StakeholderKind, StakeholderRegistered, StakeholderUpdated
from shared.problems import bad_input, storable_text

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
TAG_RE = re.compile(r"^[a-z0-9-]{1,40}$")
MIN_PASSWORD = 10
MAX_EXPERTISE = 20

# Experts: activity credited to an idea's tags for proposing it, commenting on it, voting on it.
IDEA_WEIGHT, COMMENT_WEIGHT, VOTE_WEIGHT = 3, 2, 1

# Throttling: after this many failures the account's login is locked, doubling each time.
FREE_FAILURES = 5
BASE_LOCK = timedelta(seconds=30)
MAX_LOCK = timedelta(minutes=15)
FAILURE_WINDOW = timedelta(minutes=15)


def normalise_email(email: str) -> str:
    value = email.strip().lower()
    storable_text(value, "email")
    if len(value) > 254 or not EMAIL_RE.match(value):
        raise bad_input("email is not a valid address", field="email")
    return value


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise bad_input(f"password must have at least {MIN_PASSWORD} characters", field="password")
    if len(password) > 1024:
        raise bad_input("password is too long", field="password")


def clean_display_name(name: str) -> str:
    value = " ".join(storable_text(name, "displayName").split())
    if not 1 <= len(value) <= 80:
        raise bad_input("displayName must have 1 to 80 characters", field="displayName")
    return value


def clean_organization(value: str | None) -> str | None:
    if value is None:
        return None
    value = " ".join(storable_text(value, "organization").split())
    if len(value) > 120:
        raise bad_input("organization must have at most 120 characters", field="organization")
    return value or None


def clean_tags(tags: list[str] | None, field: str = "expertise", limit: int = MAX_EXPERTISE) -> list[str]:
    out: list[str] = []
    for tag in tags or []:
        t = tag.strip().lower()
        if not TAG_RE.match(t):
            raise bad_input(f"each {field} tag has 1 to 40 characters of [a-z0-9-]", field=field)
        if t not in out:
            out.append(t)
    if len(out) > limit:
        raise bad_input(f"at most {limit} {field} tags", field=field)
    return out


def registered_event(
    stakeholder_id: uuid.UUID,
    display_name: str,
    kind: StakeholderKind,
    role: Role,
    organization: str | None,
    expertise: list[str],
) -> StakeholderRegistered:
    return StakeholderRegistered(
        stakeholder_id=stakeholder_id,
        display_name=display_name,
        kind=kind,
        role=role,
        organization=organization,
        expertise=expertise,
    )


def updated_event(
    stakeholder_id: uuid.UUID,
    display_name: str,
    kind: StakeholderKind,
    organization: str | None,
    expertise: list[str],
) -> StakeholderUpdated:
    return StakeholderUpdated(
        stakeholder_id=stakeholder_id,
        display_name=display_name,
        kind=kind,
        organization=organization,
        expertise=expertise,
    )


def grant_role(target_id: uuid.UUID, current: Role, new: Role, granted_by: uuid.UUID) -> RoleGranted:
    """Who may grant (an ADMIN) is the route's requirement."""
    return RoleGranted(stakeholder_id=target_id, role=new, previous_role=current, granted_by=granted_by)


@dataclass(frozen=True)
class ThrottleState:
    failures: int
    first_failed_at: datetime
    locked_until: datetime | None


def retry_after(state: ThrottleState | None, now: datetime) -> int | None:
    """Seconds to wait before another login attempt is accepted, or None."""
    if state is None or state.locked_until is None or state.locked_until <= now:
        return None
    return max(1, int((state.locked_until - now).total_seconds() + 0.999))


def after_failure(state: ThrottleState | None, now: datetime) -> ThrottleState:
    if state is None or now - state.first_failed_at > FAILURE_WINDOW:
        return ThrottleState(failures=1, first_failed_at=now, locked_until=None)
    failures = state.failures + 1
    locked_until = None
    if failures >= FREE_FAILURES:
        lock = min(BASE_LOCK * 2 ** (failures - FREE_FAILURES), MAX_LOCK)
        locked_until = now + lock
    return ThrottleState(failures=failures, first_failed_at=state.first_failed_at, locked_until=locked_until)


def clean_api_key_label(label: str) -> str:
    value = storable_text(label, "label").strip()
    if not 1 <= len(value) <= 80:
        raise bad_input("label must have 1 to 80 characters", field="label")
    return value


def clean_expertise_filter(tag: str) -> str:
    """The tag asked for in `experts`: normalised like expertise tags, and refused when it can
    be none (it would only fail in the database, or match nothing)."""
    value = tag.strip().lower()
    if not TAG_RE.match(value):
        raise bad_input("tag has 1 to 40 characters of [a-z0-9-]", field="tag")
    return value


def check_api_key_scope(scope: str) -> Scope:
    try:
        return Scope(scope)
    except ValueError:
        raise bad_input("scope is read or read-write", field="scope") from None
