"""The LiveHub on a real nats-server (the pinned binary): one process-wide subscription, fanned
out; the messages are the ones the services publish."""

from __future__ import annotations

import asyncio

import pytest

from devstack.testing import Infra
from devstack.waiting import eventually
from gateway.context import Runtime
from gateway.live import COMMENT, IDEA, LIVE, SUBJECTS
from tests.gateway.support import GatewayFactory, World


@pytest.fixture
def nats_url(infra: Infra) -> str:
    """The session's real nats-server (started by devstack.testing)."""
    return infra.nats_url


async def subscribed(runtime: Runtime) -> None:
    await eventually(lambda: runtime.hub.connected and len(runtime.hub._subscriptions) == len(SUBJECTS), what="hub")


@pytest.mark.asyncio
async def test_live_updates_from_nats(nats_url: str, make_gateway: GatewayFactory, world: World) -> None:
    gateway = await make_gateway(nats_url=nats_url)
    runtime: Runtime = gateway.runtime
    await subscribed(runtime)
    author = await world.stakeholder()
    idea = await world.idea(author)
    await world.known(idea)
    with (
        runtime.hub.listen((IDEA, idea), coalesce=True) as on_idea,
        runtime.hub.listen((COMMENT, idea), coalesce=False) as on_comment,
    ):
        # the comments service publishes comments.v1.comment.added; the ideas service counts it
        # and publishes live.idea.<id>
        comment = await world.comment(idea, author)
        assert await asyncio.wait_for(on_comment.get(), 20) == comment

        async def live() -> None:
            while LIVE not in await on_idea.get_all():
                pass  # the event about the comment came first; the ideas service's hint follows

        await asyncio.wait_for(live(), 20)
    await gateway.stop()
    assert not runtime.hub.connected


@pytest.mark.asyncio
async def test_a_stakeholder_event_on_nats_clears_the_cached_stakeholder(
    nats_url: str, make_gateway: GatewayFactory, world: World
) -> None:
    gateway = await make_gateway(nats_url=nats_url)
    cache = gateway.runtime.stakeholder_cache
    who = await world.stakeholder(name="Ada")
    cache.put_many({who.id: {"id": str(who.id), "display_name": "Ada"}})
    renames = iter(range(1000))

    async def forgotten() -> bool:
        # until the gateway's subscription is in place and has seen an update event
        await world.rename(who, f"Ada {next(renames)}")
        return not cache.get_many([who.id])

    await eventually(forgotten, what="the cached stakeholder forgotten")
    assert cache.get_many([who.id]) == {}
