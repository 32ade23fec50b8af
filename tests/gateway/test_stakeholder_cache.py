"""Stakeholders kept across requests by the gateway, and forgotten when they change."""

from __future__ import annotations

import uuid
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

import gateway.stakeholder_cache
from devstack.testing import Infra
from devstack.waiting import eventually
from gateway.stakeholder_cache import StakeholderCache
from shared.events.catalogue import StakeholderUpdated, subject_of
from tests.gateway.support import Gateway, World, nats_messages

AUTHORS = "query($tag: String) { ideas(first: 10, tag: $tag) { edges { node { author { displayName } } } } }"
RENAME = 'mutation { updateProfile(input: {displayName: "Ada L."}) { displayName } }'
BATCH = "stakeholders POST /stakeholders/batch"


def names(data: Any) -> list[str]:
    return [edge["node"]["author"]["displayName"] for edge in data["ideas"]["edges"]]


async def page(gateway: Gateway, world: World, token: str | None = None) -> list[str]:
    result = await gateway.execute(AUTHORS, {"tag": world.tag}, token=token)
    assert result.errors is None, result.errors
    return names(result.data)


async def test_authors_are_read_once_across_requests(gateway: Gateway, world: World) -> None:
    author = await world.stakeholder(name="Ada")
    for _ in range(3):
        await world.idea(author)
    assert await page(gateway, world) == ["Ada"] * 3
    assert await page(gateway, world) == ["Ada"] * 3
    assert gateway.endpoints()[BATCH] == 1, "the second page's authors come from the cache"


async def test_a_profile_change_through_the_gateway_shows_at_once(gateway: Gateway, world: World) -> None:
    author = await world.stakeholder(name="Ada")
    await world.idea(author)
    assert await page(gateway, world) == ["Ada"]
    result = await gateway.execute(RENAME, token=author.token)
    assert result.errors is None, result.errors
    assert await page(gateway, world) == ["Ada L."]


async def test_a_stakeholder_event_makes_the_gateway_read_again(gateway: Gateway, world: World, infra: Infra) -> None:
    """This gateway is not on NATS: the event the stakeholders service published is handed to
    it here, after the page that must still come from the cache."""
    author = await world.stakeholder(name="Ada")
    await world.idea(author)
    assert await page(gateway, world) == ["Ada"]
    async with nats_messages(infra.nats_url, subject_of(StakeholderUpdated)) as published:
        await world.rename(author, "Ada L.")  # changed elsewhere (another gateway)
        assert await page(gateway, world) == ["Ada"], "cached until the event arrives"

        def about_author() -> Any:
            return next((m for m in published if orjson.loads(m.data)["subject_id"] == str(author.id)), None)

        event = await eventually(about_author, what="the stakeholders service's update event")
    await gateway.runtime.stakeholder_cache.on_event(event)
    assert await page(gateway, world) == ["Ada L."]
    assert gateway.endpoints()[BATCH] == 2


def test_a_read_that_overlapped_a_change_is_not_kept() -> None:
    cache = StakeholderCache(ttl_seconds=30)
    who = uuid.uuid4()
    started = cache.generation
    cache.forget(who)  # the change's event arrives while the read is in flight
    cache.put_many({who: {"display_name": "old"}}, read_at_generation=started)
    assert cache.get_many([who]) == {}
    cache.put_many({who: {"display_name": "new"}}, read_at_generation=cache.generation)
    assert cache.get_many([who]) == {who: {"display_name": "new"}}


def test_entries_expire_and_the_oldest_go_first(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(gateway.stakeholder_cache.time, "monotonic", lambda: now[0])
    cache = StakeholderCache(ttl_seconds=30, max_entries=2)
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    cache.put_many({a: {"n": "a"}, b: {"n": "b"}})
    cache.put_many({c: {"n": "c"}})
    assert set(cache.get_many([a, b, c])) == {b, c}, "over max_entries the least recently used goes"
    now[0] += 31
    assert cache.get_many([b, c]) == {}, "past the TTL nothing is served"
    assert StakeholderCache(ttl_seconds=0).get_many([a]) == {}


async def test_an_unreadable_event_forgets_everyone(gateway: Gateway, world: World) -> None:
    author = await world.stakeholder(name="Ada")
    await world.idea(author)
    await page(gateway, world)
    await gateway.runtime.stakeholder_cache.on_event(SimpleNamespace(subject="x", data=b"not json"))
    await page(gateway, world)
    assert gateway.endpoints()[BATCH] == 2
