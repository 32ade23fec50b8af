"""The LiveHub on a real nats-server (the pinned binary): one process-wide subscription, fanned out."""

from __future__ import annotations

import asyncio
import uuid

import orjson
import pytest

from devstack.testing import Infra
from gateway.context import Runtime
from gateway.live import COMMENT, IDEA, LIVE
from gateway.main import create_app
from gateway.settings import GatewaySettings
from shared.messaging import connect_nats
from tests.gateway.fakes import FakeUpstream


@pytest.fixture
def nats_url(infra: Infra) -> str:
    """The session's real nats-server (started by devstack.testing)."""
    return infra.nats_url


@pytest.mark.asyncio
async def test_live_updates_from_nats(nats_url: str, fake: FakeUpstream) -> None:
    app = create_app(GatewaySettings(log_json=False, nats_url=nats_url), transports=fake.transports())
    async with app.router.lifespan_context(app):
        runtime: Runtime = app.state.runtime
        for _ in range(500):
            if runtime.hub.connected and runtime.hub._subscriptions:
                break
            await asyncio.sleep(0.01)
        assert runtime.hub.connected
        idea, comment = uuid.uuid4(), uuid.uuid4()
        publisher = await connect_nats(nats_url, "test-publisher")
        try:
            with (
                runtime.hub.listen((IDEA, idea), coalesce=True) as on_idea,
                runtime.hub.listen((COMMENT, idea), coalesce=False) as on_comment,
            ):
                await publisher.publish(f"live.idea.{idea}", orjson.dumps({"idea_id": str(idea)}))
                envelope = {
                    "type": "comments.v1.comment.added",
                    "data": {"idea_id": str(idea), "comment_id": str(comment)},
                }
                await publisher.publish("comments.v1.comment.added", orjson.dumps(envelope))
                await publisher.flush()
                assert LIVE in await asyncio.wait_for(on_idea.get_all(), 5)
                assert await asyncio.wait_for(on_comment.get(), 5) == comment
        finally:
            await publisher.close()
    assert not runtime.hub.connected


@pytest.mark.asyncio
async def test_a_stakeholder_event_on_nats_clears_the_cached_stakeholder(nats_url: str, fake: FakeUpstream) -> None:
    app = create_app(GatewaySettings(log_json=False, nats_url=nats_url), transports=fake.transports())
    async with app.router.lifespan_context(app):
        runtime: Runtime = app.state.runtime
        cache = runtime.stakeholder_cache
        who = uuid.uuid4()
        cache.put_many({who: {"id": str(who), "display_name": "Ada"}})
        publisher = await connect_nats(nats_url, "test-publisher")
        try:
            envelope = {"type": "stakeholders.v1.stakeholder.updated", "subject_id": str(who), "data": {}}
            for _ in range(500):  # until the gateway's subscription is in place and has seen it
                await publisher.publish("stakeholders.v1.stakeholder.updated", orjson.dumps(envelope))
                await publisher.flush()
                await asyncio.sleep(0.01)
                if not cache.get_many([who]):
                    break
            assert cache.get_many([who]) == {}
        finally:
            await publisher.close()
