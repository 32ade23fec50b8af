from __future__ import annotations

import base64
import uuid

import pytest

from gateway.ids import decode_global_id, encode_global_id, parse_id, require_id
from gateway.schema.connections import check_after
from shared.problems import Problem


@pytest.mark.parametrize("type_name", ["Idea", "Stakeholder", "Comment", "ApiKey"])
def test_global_id_round_trip(type_name: str) -> None:
    pk = uuid.uuid4()
    encoded = encode_global_id(type_name, pk)
    assert base64.b64decode(encoded).decode() == f"{type_name}:{pk}"
    decoded = decode_global_id(encoded)
    assert decoded is not None
    assert (decoded.type_name, decoded.id) == (type_name, pk)
    assert str(decoded) == encoded


@pytest.mark.parametrize(
    "value",
    [
        "",
        "not base64!",
        base64.b64encode(b"Idea").decode(),
        base64.b64encode(b"Idea:nope").decode(),
        base64.b64encode(f"Secret:{uuid.uuid4()}".encode()).decode(),
        "x" * 500,
    ],
)
def test_garbage_is_not_an_id(value: str) -> None:
    assert decode_global_id(value) is None


def test_typed_ids() -> None:
    pk = uuid.uuid4()
    assert parse_id(encode_global_id("Idea", pk), "Idea") == pk
    assert parse_id(encode_global_id("Comment", pk), "Idea") is None  # wrong type
    assert parse_id(str(pk), "Idea") == pk  # a bare uuid is accepted where the type is known
    with pytest.raises(Problem) as err:
        require_id("garbage", "Idea")
    assert err.value.code == "NOT_FOUND"


def test_cursors_pass_through_and_the_absurd_ones_stop_here() -> None:
    """The cursor format is the services' (tests/kit/test_pagination.py); the gateway passes it on."""
    assert check_after(None) is None and check_after("") is None
    assert check_after("svc-cursor") == "svc-cursor"
    with pytest.raises(Problem) as err:
        check_after("x" * 1_001)
    assert err.value.code == "BAD_USER_INPUT"
