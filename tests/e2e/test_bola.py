"""Broken object level authorisation (OWASP API1): a SUPPLIER-only idea must be invisible to a
CUSTOMER (and to anonymous readers) through every path of the API, and visible to suppliers, its
author, PRODUCT_TEAM and ADMIN. Invisible reads exactly like unknown: null / left out on reads,
NOT_FOUND on writes, never FORBIDDEN."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tests.e2e.conftest import GraphQL
from tests.e2e.support import (
    CAST,
    COMMENT,
    MERGE,
    SET_STATUS,
    WITHDRAW,
    Crowd,
    Session,
    anonymous,
    comment,
    propose,
    subscription_client,
    unique_tag,
    unique_word,
    vote,
    wait_idea,
    wait_projections,
)

pytestmark = pytest.mark.e2e

READ = """
query($id: ID!, $comment: ID!, $tag: String!, $word: String!, $title: String!) {
  idea(id: $id) { id }
  node(id: $id) { id }
  commentNode: node(id: $comment) { id ... on Comment { idea { id } } }
  newest: ideas(first: 100, sort: NEWEST) { edges { node { id } } }
  tagged: ideas(first: 100, tag: $tag) { totalCount edges { node { id } } }
  searched: ideas(first: 100, search: $word) { totalCount edges { node { id } } }
  both: ideas(first: 100, search: $word, tag: $tag, sort: MOST_DISCUSSED) { totalCount edges { node { id } } }
  segment: ideas(first: 100, tag: $tag, segment: SUPPLIER) { totalCount edges { node { id } } }
  merged: ideas(first: 100, tag: $tag, status: [MERGED, OPEN]) { totalCount edges { node { id } } }
  similar: similarIdeas(text: $title, first: 20) { id }
}"""
FEEDER = "query($id: ID!) { idea(id: $id) { status mergedInto { id } myVote { weight idea { id } } } }"
REFINE = 'mutation($id: ID!) { refineIdea(id: $id, input: {title: "Mine now"}) { id } }'
FLAG = 'mutation($id: ID!) { flagComment(id: $id, reason: "spam") }'
HIDE = 'mutation($id: ID!) { hideComment(id: $id, reason: "rude") { id } }'
IDEA_CHANGED = "subscription($id: ID!) { ideaChanged(id: $id) { id score } }"
COMMENT_ADDED = "subscription($id: ID!) { commentAdded(ideaId: $id) { id body idea { id } } }"


@dataclass
class Secret:
    idea: dict[str, Any]
    comment: dict[str, Any]
    author: Session


@dataclass
class Scene:
    tag: str
    word: str
    by_employee: Secret  # visibleTo [SUPPLIER], proposed by an EMPLOYEE
    by_supplier: Secret  # visibleTo [SUPPLIER], proposed by a SUPPLIER
    public: dict[str, Any]
    feeder: dict[str, Any]  # public, merged into by_employee
    merged_secret: dict[str, Any]  # visibleTo [SUPPLIER], merged into public
    customer: Session
    supplier: Session

    @property
    def secrets(self) -> list[Secret]:
        return [self.by_employee, self.by_supplier]


@pytest.fixture(scope="module")
def scene(product_team: Session, crowd: Crowd) -> Scene:
    tag, word = unique_tag(), unique_word()
    employee, supplier_author = crowd("EMPLOYEE", 2), crowd("SUPPLIER", 2)
    customer, supplier = crowd("CUSTOMER", 2), crowd("SUPPLIER", 3)
    body = f"Only for suppliers: {word}."
    # every idea first (the services learn about them meanwhile), then votes and comments
    by_employee = propose(
        employee, title=f"Wholesale {word} pricing tiers", body=body, tags=[tag], visible_to=["SUPPLIER"]
    )
    by_supplier = propose(
        supplier_author, title=f"Wholesale {word} pricing portal", body=body, tags=[tag], visible_to=["SUPPLIER"]
    )
    public = propose(employee, title=f"Retail {word} pricing page", body=f"For everyone: {word}.", tags=[tag])
    feeder = propose(employee, title=f"Feeder {word}", tags=[tag])  # public, to be merged into by_employee
    merged_secret = propose(supplier_author, title=f"Merged {word}", tags=[tag], visible_to=["SUPPLIER"])
    secrets = []
    for idea in (by_employee, by_supplier):
        vote(supplier, idea["id"], 2)
        secrets.append(Secret(idea, comment(supplier, idea["id"], f"supplier talk {word}"), employee))
    secrets[1].author = supplier_author
    vote(supplier, public["id"], 1)
    comment(customer, public["id"], "public talk")
    # the customer's vote on the feeder moves to the supplier-only idea with the merge
    vote(customer, feeder["id"], 3)
    product_team.ok(MERGE, source=feeder["id"], target=by_employee["id"])
    # and a supplier-only idea merged into the public one
    product_team.ok(MERGE, source=merged_secret["id"], target=public["id"])
    wait_projections(product_team, by_employee["id"], score=5, voters=2, comments=1)
    wait_projections(product_team, by_supplier["id"], score=2, voters=1, comments=1)
    wait_projections(product_team, feeder["id"], score=0, voters=0)
    return Scene(tag, word, secrets[0], secrets[1], public, feeder, merged_secret, customer, supplier)


def read(reader: Session | GraphQL, scene: Scene, secret: Secret) -> dict[str, Any]:
    data: dict[str, Any] = reader.ok(
        READ,
        id=secret.idea["id"],
        comment=secret.comment["id"],
        tag=scene.tag,
        word=scene.word,
        title=secret.idea["title"],
    )
    return data


def listed(connection: dict[str, Any]) -> set[str]:
    return {edge["node"]["id"] for edge in connection["edges"]}


@pytest.mark.parametrize("who", ["customer", "anonymous", "customer moderator"])
def test_a_supplier_only_idea_is_invisible_to_others_on_every_read_path(
    who: str, url: str, scene: Scene, moderator: Session
) -> None:
    reader: Session | GraphQL = {
        "customer": scene.customer,
        "anonymous": anonymous(url),
        "customer moderator": moderator,
    }[who]
    hidden = {s.idea["id"] for s in scene.secrets} | {scene.merged_secret["id"]}
    for secret in scene.secrets:
        data = read(reader, scene, secret)
        assert data["idea"] is None and data["node"] is None
        assert data["commentNode"] is None  # a comment on it, and through it the idea
        for name in ("newest", "tagged", "searched", "both", "segment", "merged"):
            assert not listed(data[name]) & hidden, name
        assert data["similar"] and not {i["id"] for i in data["similar"]} & hidden
        # counts count only what the reader may see
        assert listed(data["tagged"]) == {scene.public["id"]} and data["tagged"]["totalCount"] == 1
        assert listed(data["searched"]) == {scene.public["id"]} and data["searched"]["totalCount"] == 1
        assert data["both"]["totalCount"] == 1
        assert listed(data["segment"]) == {scene.public["id"]} and data["segment"]["totalCount"] == 1
        assert listed(data["merged"]) == {scene.public["id"], scene.feeder["id"]}
        assert data["merged"]["totalCount"] == 2
        assert scene.public["id"] in listed(data["newest"])
    # a visible idea merged into it: merged, but into nothing the reader can follow; the vote
    # that moved there is not the reader's to see either
    assert reader.ok(FEEDER, id=scene.feeder["id"])["idea"] == {"status": "MERGED", "mergedInto": None, "myVote": None}


def test_writes_on_a_supplier_only_idea_are_not_found_never_forbidden(
    url: str, scene: Scene, moderator: Session
) -> None:
    customer = scene.customer
    for secret in scene.secrets:
        idea_id, comment_id = secret.idea["id"], secret.comment["id"]
        assert customer.error_codes(CAST, id=idea_id, w=1) == ["NOT_FOUND"]
        # the customer HAS a vote there (moved by the merge): still NOT_FOUND, no leak
        assert customer.error_codes(WITHDRAW, id=idea_id) == ["NOT_FOUND"]
        assert customer.error_codes(COMMENT, id=idea_id, body="let me in") == ["NOT_FOUND"]
        assert customer.error_codes(REFINE, id=idea_id) == ["NOT_FOUND"]
        assert customer.error_codes(SET_STATUS, id=idea_id, status="DECLINED") == ["NOT_FOUND"]
        assert customer.error_codes(MERGE, source=idea_id, target=scene.public["id"]) == ["NOT_FOUND"]
        assert customer.error_codes(FLAG, id=comment_id) == ["NOT_FOUND"]
        assert moderator.error_codes(HIDE, id=comment_id) == ["NOT_FOUND"]
        # replying to its comment from a public idea does not reveal that the comment exists
        assert customer.error_codes(COMMENT, id=scene.public["id"], body="re", parent=comment_id) == ["NOT_FOUND"]
        api = anonymous(url)
        for query, variables in (
            (CAST, {"id": idea_id, "w": 1}),
            (COMMENT, {"id": idea_id, "body": "x"}),
            (REFINE, {"id": idea_id}),
            (FLAG, {"id": comment_id}),
        ):
            assert api.error_codes(query, **variables) == ["UNAUTHENTICATED"]
    # nothing of that happened
    seen = wait_idea(scene.supplier, scene.by_employee.idea["id"], lambda i: True)
    assert (seen["score"], seen["voters"], seen["commentCount"], seen["status"]) == (5, 2, 1, "OPEN")


@pytest.mark.parametrize("who", ["customer", "anonymous"])
def test_subscriptions_to_a_supplier_only_idea_are_not_found(who: str, url: str, scene: Scene) -> None:
    token = scene.customer.token if who == "customer" else None
    with subscription_client(url, token) as ws:
        for n, secret in enumerate(scene.secrets):
            for query, op in ((IDEA_CHANGED, f"idea{n}"), (COMMENT_ADDED, f"comment{n}")):
                ws.subscribe(op, query, id=secret.idea["id"])
                message = ws.next(op)
                if message["type"] == "error":
                    errors = message["payload"]
                else:  # an execution error, then complete
                    assert message["type"] == "next" and message["payload"].get("data") is None, message
                    errors = message["payload"]["errors"]
                    assert ws.next(op)["type"] == "complete"
                assert [e["extensions"]["code"] for e in errors] == ["NOT_FOUND"], message


def test_a_supplier_only_idea_is_visible_to_suppliers_its_author_and_staff(
    scene: Scene, product_team: Session, admin: Session, crowd: Crowd
) -> None:
    other_supplier = crowd("SUPPLIER", 4)
    readers = {
        "by_employee": [
            scene.supplier,
            other_supplier,
            scene.by_employee.author,
            scene.by_supplier.author,
            product_team,
            admin,
        ],
        "by_supplier": [scene.supplier, other_supplier, scene.by_supplier.author, product_team, admin],
    }
    for name, secret in (("by_employee", scene.by_employee), ("by_supplier", scene.by_supplier)):
        idea_id = secret.idea["id"]
        for reader in readers[name]:
            data = read(reader, scene, secret)
            assert data["idea"] == {"id": idea_id} and data["node"] == {"id": idea_id}
            assert data["commentNode"] == {"id": secret.comment["id"], "idea": {"id": idea_id}}
            for list_name in ("newest", "tagged", "searched", "both", "segment", "merged"):
                assert idea_id in listed(data[list_name]), (list_name, reader.display_name)
            assert idea_id in {i["id"] for i in data["similar"]}
    # the EMPLOYEE author of one supplier-only idea is no supplier: the other one stays hidden
    data = read(scene.by_employee.author, scene, scene.by_supplier)
    assert data["idea"] is None and data["commentNode"] is None
    # mergedInto is followed by those who may see the target
    for reader in (scene.supplier, product_team, admin):
        assert reader.ok(FEEDER, id=scene.feeder["id"])["idea"]["mergedInto"] == {"id": scene.by_employee.idea["id"]}
    # a supplier can work on it
    other_idea = scene.by_supplier.idea["id"]
    vote(other_supplier, other_idea, 1)
    added = comment(other_supplier, other_idea, "me too", parent=scene.by_supplier.comment["id"])
    assert added["idea"] == {"id": other_idea} and added["parent"] == {"id": scene.by_supplier.comment["id"]}
    assert other_supplier.error_codes(REFINE, id=other_idea) == ["FORBIDDEN"]  # visible, but not theirs


def test_a_supplier_receives_live_updates_of_a_supplier_only_idea(url: str, scene: Scene, crowd: Crowd) -> None:
    idea_id = scene.by_supplier.idea["id"]
    with subscription_client(url, scene.supplier.token) as ws:
        ws.subscribe("c", COMMENT_ADDED, id=idea_id)
        ws.subscribe("i", IDEA_CHANGED, id=idea_id)
        ws.settle(idea_id)
        writer = crowd("SUPPLIER", 5)
        added = comment(writer, idea_id, "live for suppliers")
        message = ws.next("c")
        assert message["type"] == "next", message
        assert message["payload"]["data"]["commentAdded"] == {
            "id": added["id"],
            "body": "live for suppliers",
            "idea": {"id": idea_id},
        }
        message = ws.next("i")
        assert message["type"] == "next" and message["payload"]["data"]["ideaChanged"]["id"] == idea_id
