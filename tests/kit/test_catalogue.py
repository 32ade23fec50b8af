"""The event catalogue is the one written record of who publishes and who consumes what:
check it against the code."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from shared.events.catalogue import CATALOGUE, StakeholderUpdated, stream_for_subject
from shared.messaging import STREAMS
from shared.migrations import SERVICES

ROOT = Path(__file__).resolve().parents[2]
SUBJECT = re.compile(r"^(stakeholders|ideas|votes|comments)\.v1\.[a-z_]+\.[a-z_]+$")


def test_subjects_follow_the_naming_rule_and_have_a_stream() -> None:
    for subject, spec in CATALOGUE.items():
        assert SUBJECT.match(subject), subject
        assert stream_for_subject(subject) in STREAMS
        assert subject.startswith(spec.publisher + "."), "a context publishes only its own subjects"


@pytest.mark.parametrize("service", SERVICES)
def test_consumers_in_the_catalogue_are_the_services_subscriptions(service: str) -> None:
    consumers = importlib.import_module(f"services.{service}.consumers")
    subscribed = {subject for sub in consumers.SUBSCRIPTIONS for subject in sub.subjects}
    listed = {subject for subject, spec in CATALOGUE.items() if service in spec.consumers}
    assert subscribed == listed


@pytest.mark.parametrize("service", SERVICES)
def test_every_published_event_type_appears_in_the_publishers_code(service: str) -> None:
    """Each catalogue model a service publishes is used by that service's code."""
    code = "\n".join(p.read_text() for p in (ROOT / "services" / service).glob("*.py"))
    for spec in CATALOGUE.values():
        if spec.publisher == service and spec.model is not StakeholderUpdated:
            assert spec.model.__name__ in code, f"{service} never builds {spec.model.__name__}"
