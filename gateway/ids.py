"""Opaque Relay-style global ids (base64 of "Type:uuid"). Connection cursors are the services' own
(shared/pagination.py), passed through."""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass

from shared.problems import Problem

NODE_TYPES = frozenset({"Stakeholder", "Idea", "Comment", "ApiKey"})


@dataclass(frozen=True)
class GlobalId:
    type_name: str
    id: uuid.UUID

    def __str__(self) -> str:
        return encode_global_id(self.type_name, self.id)


def encode_global_id(type_name: str, id_: uuid.UUID | str) -> str:
    raw = f"{type_name}:{uuid.UUID(str(id_))}"
    return base64.b64encode(raw.encode()).decode()


def decode_global_id(value: str) -> GlobalId | None:
    """The type and uuid inside a global id; None when it is not one of ours."""
    if not isinstance(value, str) or not value or len(value) > 200:
        return None
    try:
        raw = base64.b64decode(value.encode(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    type_name, sep, id_part = raw.partition(":")
    if not sep or type_name not in NODE_TYPES:
        return None
    try:
        return GlobalId(type_name, uuid.UUID(id_part))
    except ValueError:
        return None


def parse_id(value: str, type_name: str) -> uuid.UUID | None:
    """The uuid of a global id of the expected type (a bare uuid is accepted too)."""
    decoded = decode_global_id(value)
    if decoded is not None:
        return decoded.id if decoded.type_name == type_name else None
    try:
        return uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        return None


def require_id(value: str, type_name: str) -> uuid.UUID:
    """Like parse_id, for mutations: an id that is not one is an unknown id (NOT_FOUND)."""
    parsed = parse_id(value, type_name)
    if parsed is None:
        raise Problem("NOT_FOUND", f"{type_name} not found")
    return parsed
