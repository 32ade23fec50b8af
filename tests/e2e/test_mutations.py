"""Every mutation of the contract (and the gateway's additions) against the running platform:
what it does, and each refusal with the contract's `extensions.code`."""

from __future__ import annotations

import pytest

from devstack.waiting import eventually_blocking
from tests.e2e.conftest import ADMIN_EMAIL, GraphQL
from tests.e2e.support import (
    CAST,
    COMMENT,
    GRANT,
    IDEA,
    LOGIN,
    MERGE,
    MUTATION_RETRY_INTERVAL,
    PASSWORD,
    PROPOSE,
    REGISTER,
    SET_STATUS,
    WITHDRAW,
    Crowd,
    Session,
    anonymous,
    codes,
    comment,
    idea_as,
    login,
    propose,
    register,
    unique,
    vote,
    wait_idea,
    wait_projections,
)

pytestmark = pytest.mark.e2e

UNKNOWN_IDEA = "SWRlYTowMDAwMDAwMC0wMDAwLTQwMDAtODAwMC0wMDAwMDAwMDAwMDA="
UNKNOWN_COMMENT = "Q29tbWVudDowMDAwMDAwMC0wMDAwLTQwMDAtODAwMC0wMDAwMDAwMDAwMDA="
UNKNOWN_STAKEHOLDER = "U3Rha2Vob2xkZXI6MDAwMDAwMDAtMDAwMC00MDAwLTgwMDAtMDAwMDAwMDAwMDAw"
REFINE = """
mutation($id: ID!, $input: RefineIdeaInput!) {
  refineIdea(id: $id, input: $input) { id title body tags revisions { version title editor { id } } }
}"""
FLAG = "mutation($id: ID!, $reason: String!) { flagComment(id: $id, reason: $reason) }"
HIDE = "mutation($id: ID!, $reason: String!) { hideComment(id: $id, reason: $reason) { id body hidden } }"
COMMENTS = """
query($id: ID!) {
  idea(id: $id) { commentCount comments(first: 50) { totalCount edges { node { id body hidden official } } } }
}"""


# --- register / login -------------------------------------------------------------------------------
def test_register(url: str) -> None:
    api = anonymous(url)
    email = f"{unique('reg')}@example.org"
    data = {"email": email, "password": PASSWORD, "displayName": "Grace", "kind": "PARTNER", "organization": "Navy"}
    answer = api.ok(REGISTER, input=data)["register"]
    assert answer["token"]
    who = answer["stakeholder"]
    assert (who["displayName"], who["kind"], who["role"], who["organization"]) == ("Grace", "PARTNER", "MEMBER", "Navy")
    assert GraphQL(url, answer["token"]).ok("{ me { id } }") == {"me": {"id": who["id"]}}

    assert api.error_codes(REGISTER, input={**data, "email": email.upper()}) == ["CONFLICT"]  # duplicate email
    fresh = f"{unique('reg')}@example.org"
    assert api.error_codes(REGISTER, input={**data, "email": fresh, "password": "short"}) == ["BAD_USER_INPUT"]
    assert api.error_codes(REGISTER, input={**data, "email": fresh, "password": "123456789"}) == ["BAD_USER_INPUT"]
    assert api.error_codes(REGISTER, input={**data, "email": "not an email"}) == ["BAD_USER_INPUT"]
    assert api.error_codes(REGISTER, input={**data, "email": fresh, "expertise": ["no spaces"]}) == ["BAD_USER_INPUT"]
    assert api.error_codes(REGISTER, input={**data, "email": fresh, "kind": "ROBOT"}) == ["BAD_USER_INPUT"]
    # a password of exactly 10 characters is enough
    assert api.ok(REGISTER, input={**data, "email": fresh, "password": "0123456789"})["register"]["token"]


def test_login(url: str, crowd: Crowd) -> None:
    who = crowd("SUPPLIER")
    again = login(url, who.email.upper(), PASSWORD)
    assert again.id == who.id and again.kind == "SUPPLIER"
    assert again.ok("{ me { id } }") == {"me": {"id": who.id}}
    api = anonymous(url)
    assert api.error_codes(LOGIN, email=who.email, password="wrong password!") == ["UNAUTHENTICATED"]
    assert api.error_codes(LOGIN, email=f"{unique('nobody')}@example.org", password=PASSWORD) == ["UNAUTHENTICATED"]
    assert api.error_codes(LOGIN, email="not an email", password=PASSWORD) == ["UNAUTHENTICATED"]
    # repeated failures lock the account for a while: RATE_LIMITED, with a retry hint
    locked = f"{unique('locked')}@example.org"
    for _ in range(5):
        assert api.error_codes(LOGIN, email=locked, password="wrong password!") == ["UNAUTHENTICATED"]
    body = api(LOGIN, email=locked, password="wrong password!")
    assert codes(body) == ["RATE_LIMITED"], body
    extensions = body["errors"][0]["extensions"]
    assert extensions["retryAfter"] >= 1 and extensions["retryable"] is True


# --- proposeIdea / refineIdea ------------------------------------------------------------------------
def test_propose_idea(url: str, crowd: Crowd) -> None:
    who = crowd("EMPLOYEE")
    idea = propose(
        who,
        title="Bulk export",
        body="Export everything.",
        tags=["Data", "data", "csv"],
        visible_to=["PARTNER", "CUSTOMER", "PARTNER"],
    )
    assert (idea["title"], idea["body"], idea["tags"]) == ("Bulk export", "Export everything.", ["data", "csv"])
    assert idea["visibleTo"] == ["CUSTOMER", "PARTNER"]  # de-duplicated, enum order
    assert idea["status"] == "OPEN" and idea["author"]["id"] == who.id
    query = "query($id: ID!) { idea(id: $id) { revisions { version title body tags editor { id } } } }"
    assert who.ok(query, id=idea["id"])["idea"]["revisions"] == [
        {
            "version": 1,
            "title": "Bulk export",
            "body": "Export everything.",
            "tags": ["data", "csv"],
            "editor": {"id": who.id},
        }
    ]
    # limits: title 1..140 after trimming, body 1..20,000, at most 10 tags of [a-z0-9-]{1,40}
    assert propose(who, title="t" * 140)["title"] == "t" * 140
    refused = [
        {"title": "t" * 141, "body": "b"},
        {"title": "   ", "body": "b"},
        {"title": "t", "body": ""},
        {"title": "t", "body": "b" * 20_001},
        {"title": "t", "body": "b", "tags": [f"tag{n}" for n in range(11)]},
        {"title": "t", "body": "b", "tags": ["with space"]},
        {"title": "t", "body": "b", "tags": ["x" * 41]},
        {"title": "t", "body": "b", "tags": [""]},
    ]
    for data in refused:
        assert who.error_codes(PROPOSE, input=data) == ["BAD_USER_INPUT"], data
    assert who.error_codes(PROPOSE, input={"title": "t", "body": "b", "visibleTo": ["ROBOT"]}) == ["BAD_USER_INPUT"]
    assert anonymous(url).error_codes(PROPOSE, input={"title": "t", "body": "b"}) == ["UNAUTHENTICATED"]


def test_refine_idea(url: str, product_team: Session, admin: Session, crowd: Crowd) -> None:
    author = crowd("CUSTOMER")
    idea = propose(author, title="First title", body="First body", tags=["a"])
    refined = author.ok(REFINE, id=idea["id"], input={"body": "Second body"})["refineIdea"]
    assert (refined["title"], refined["body"], refined["tags"]) == ("First title", "Second body", ["a"])
    assert [r["version"] for r in refined["revisions"]] == [1, 2]
    refined = product_team.ok(REFINE, id=idea["id"], input={"title": "Staff title", "tags": ["b", "c"]})["refineIdea"]
    assert (refined["title"], refined["tags"]) == ("Staff title", ["b", "c"])
    refined = admin.ok(REFINE, id=idea["id"], input={"title": "Admin title"})["refineIdea"]
    assert [(r["version"], r["title"], r["editor"]["id"]) for r in refined["revisions"]] == [
        (1, "First title", author.id),
        (2, "First title", author.id),
        (3, "Staff title", product_team.id),
        (4, "Admin title", admin.id),
    ]
    # another member sees the idea but may not refine it
    assert crowd("CUSTOMER", 1).error_codes(REFINE, id=idea["id"], input={"title": "Hijack"}) == ["FORBIDDEN"]
    assert author.error_codes(REFINE, id=UNKNOWN_IDEA, input={"title": "x"}) == ["NOT_FOUND"]
    assert author.error_codes(REFINE, id=idea["id"], input={}) == ["BAD_USER_INPUT"]
    assert author.error_codes(REFINE, id=idea["id"], input={"title": " "}) == ["BAD_USER_INPUT"]
    assert author.error_codes(REFINE, id=idea["id"], input={"tags": ["BAD TAG"]}) == ["BAD_USER_INPUT"]
    assert anonymous(url).error_codes(REFINE, id=idea["id"], input={"title": "x"}) == ["UNAUTHENTICATED"]
    # a merged idea is not refined any more
    target = propose(author)
    product_team.ok(MERGE, source=idea["id"], target=target["id"])
    assert author.error_codes(REFINE, id=idea["id"], input={"title": "Too late"}) == ["CONFLICT"]


# --- castVote / withdrawVote --------------------------------------------------------------------------
def test_cast_vote(url: str, product_team: Session, crowd: Crowd) -> None:
    idea = propose(crowd())
    voter, other = crowd("SUPPLIER"), crowd("CUSTOMER", 1)
    cast = vote(voter, idea["id"], 2)
    assert cast["voter"]["id"] == voter.id and cast["idea"]["id"] == idea["id"]
    # casting again changes the weight (one vote per stakeholder), keeping when it was first cast
    again = voter.ok(CAST, id=idea["id"], w=3)["castVote"]
    assert again["weight"] == 3 and again["castAt"] == cast["castAt"]
    # the same weight again changes nothing
    assert voter.ok(CAST, id=idea["id"], w=3)["castVote"] == again
    # weight defaults to 1
    default = other.ok("mutation($id: ID!) { castVote(ideaId: $id) { weight } }", id=idea["id"])
    assert default == {"castVote": {"weight": 1}}
    seen = wait_projections(voter, idea["id"], score=4, voters=2)
    assert seen["tally"] == [
        {"kind": "CUSTOMER", "voters": 1, "weight": 1},
        {"kind": "SUPPLIER", "voters": 1, "weight": 3},
    ]
    assert seen["myVote"] == {"weight": 3}

    for weight in (0, 4, -1):
        assert voter.error_codes(CAST, id=idea["id"], w=weight) == ["BAD_USER_INPUT"]
    assert voter.error_codes(CAST, id=UNKNOWN_IDEA, w=1) == ["NOT_FOUND"]
    assert voter.error_codes(CAST, id=voter.id, w=1) == ["NOT_FOUND"]  # a stakeholder's id is no idea
    assert anonymous(url).error_codes(CAST, id=idea["id"], w=1) == ["UNAUTHENTICATED"]
    # ideas that do not accept votes: CONFLICT (the votes service learns the status from an event)
    product_team.ok(SET_STATUS, id=idea["id"], status="DECLINED")
    eventually_blocking(  # w=3: no change while still accepted
        lambda: codes(voter(CAST, id=idea["id"], w=3)) == ["CONFLICT"],
        interval=MUTATION_RETRY_INTERVAL,
        what="the votes service knows the idea is DECLINED",
    )
    assert other.error_codes(CAST, id=idea["id"], w=2) == ["CONFLICT"]
    assert idea_as(voter, idea["id"])["score"] == 4  # type: ignore[index]


def test_withdraw_vote(url: str, product_team: Session, crowd: Crowd) -> None:
    idea = propose(crowd())
    voter, stays = crowd("PARTNER"), crowd("EMPLOYEE")
    vote(voter, idea["id"], 3)
    vote(stays, idea["id"], 1)
    assert voter.ok(WITHDRAW, id=idea["id"]) == {"withdrawVote": True}
    assert voter.ok(WITHDRAW, id=idea["id"]) == {"withdrawVote": False}
    seen = wait_projections(voter, idea["id"], score=1, voters=1)
    assert seen["tally"] == [{"kind": "EMPLOYEE", "voters": 1, "weight": 1}] and seen["myVote"] is None
    assert voter.error_codes(WITHDRAW, id=UNKNOWN_IDEA) == ["NOT_FOUND"]
    assert anonymous(url).error_codes(WITHDRAW, id=idea["id"]) == ["UNAUTHENTICATED"]
    # a vote on a DECLINED idea can still be withdrawn
    product_team.ok(SET_STATUS, id=idea["id"], status="DECLINED")
    eventually_blocking(  # w=1: no change while still accepted
        lambda: codes(stays(CAST, id=idea["id"], w=1)) == ["CONFLICT"],
        interval=MUTATION_RETRY_INTERVAL,
        what="the votes service knows the idea is DECLINED",
    )
    assert stays.ok(WITHDRAW, id=idea["id"]) == {"withdrawVote": True}
    assert wait_projections(voter, idea["id"], score=0, voters=0)["tally"] == []


# --- addComment / flagComment / hideComment -------------------------------------------------------------
def test_add_comment(url: str, product_team: Session, admin: Session, crowd: Crowd) -> None:
    idea, elsewhere = propose(crowd()), propose(crowd())
    member = crowd("CUSTOMER", 1)
    first = comment(member, idea["id"], "  <b>inert</b> text  ")
    assert first["body"] == "  <b>inert</b> text  "  # stored and returned exactly as given
    assert (first["official"], first["hidden"], first["parent"]) == (False, False, None)
    assert first["author"]["id"] == member.id and first["idea"]["id"] == idea["id"]
    reply = comment(member, idea["id"], "a reply", parent=first["id"])
    assert reply["parent"] == {"id": first["id"]}
    # official answers: written by PRODUCT_TEAM or ADMIN (a moderator's are not)
    assert comment(product_team, idea["id"], "We are on it")["official"] is True
    assert comment(admin, idea["id"], "Me too")["official"] is True

    add = COMMENT
    assert member.error_codes(add, id=idea["id"], body="   ") == ["BAD_USER_INPUT"]
    assert member.error_codes(add, id=idea["id"], body="") == ["BAD_USER_INPUT"]
    assert member.error_codes(add, id=idea["id"], body="x" * 10_001) == ["BAD_USER_INPUT"]
    assert comment(member, idea["id"], "y" * 10_000)["body"] == "y" * 10_000
    assert member.error_codes(add, id=UNKNOWN_IDEA, body="hello") == ["NOT_FOUND"]
    assert member.error_codes(add, id=idea["id"], body="hello", parent=UNKNOWN_COMMENT) == ["NOT_FOUND"]
    # a reply stays on its parent's idea
    eventually_blocking(
        lambda: codes(member(add, id=elsewhere["id"], body="x", parent=first["id"])) == ["BAD_USER_INPUT"],
        interval=MUTATION_RETRY_INTERVAL,
        what="the comments service knows the other idea",
    )
    assert anonymous(url).error_codes(add, id=idea["id"], body="hello") == ["UNAUTHENTICATED"]
    seen = wait_idea(member, idea["id"], lambda i: i["commentCount"] == 5)
    assert seen["commentCount"] == 5
    # a MERGED idea refuses new comments
    product_team.ok(MERGE, source=idea["id"], target=elsewhere["id"])
    eventually_blocking(
        lambda: codes(member(add, id=idea["id"], body="late")) == ["CONFLICT"],
        interval=MUTATION_RETRY_INTERVAL,
        what="the comments service knows the idea is MERGED",
    )


def test_flag_comment(url: str, crowd: Crowd) -> None:
    idea = propose(crowd())
    remark = comment(crowd(), idea["id"])
    flagger = crowd("CUSTOMER", 1)
    assert flagger.ok(FLAG, id=remark["id"], reason="spam") == {"flagComment": True}
    assert flagger.ok(FLAG, id=remark["id"], reason="spam again") == {"flagComment": False}  # once per member
    assert crowd("SUPPLIER").ok(FLAG, id=remark["id"], reason="rude") == {"flagComment": True}
    assert flagger.error_codes(FLAG, id=remark["id"], reason="   ") == ["BAD_USER_INPUT"]
    assert flagger.error_codes(FLAG, id=remark["id"], reason="r" * 501) == ["BAD_USER_INPUT"]
    assert flagger.error_codes(FLAG, id=UNKNOWN_COMMENT, reason="spam") == ["NOT_FOUND"]
    assert anonymous(url).error_codes(FLAG, id=remark["id"], reason="spam") == ["UNAUTHENTICATED"]


def test_hide_comment(url: str, moderator: Session, product_team: Session, crowd: Crowd) -> None:
    idea = propose(crowd())
    talker = crowd("CUSTOMER", 1)
    kept = comment(talker, idea["id"], "kept")
    rude = comment(talker, idea["id"], "something rude")
    after = comment(talker, idea["id"], "after")
    assert talker.error_codes(HIDE, id=rude["id"], reason="rude") == ["FORBIDDEN"]
    hidden = moderator.ok(HIDE, id=rude["id"], reason="rude")["hideComment"]
    assert hidden == {"id": rude["id"], "body": "something rude", "hidden": True}
    # hiding again changes nothing
    assert moderator.ok(HIDE, id=rude["id"], reason="other")["hideComment"]["hidden"] is True
    # the hidden comment keeps its place; its body is empty for everyone but moderators
    for reader, body in (
        (anonymous(url), ""),
        (talker, ""),
        (crowd("PARTNER"), ""),
        (moderator, "something rude"),
        (product_team, "something rude"),
    ):
        seen = reader.ok(COMMENTS, id=idea["id"])["idea"]["comments"]
        assert [(e["node"]["id"], e["node"]["body"], e["node"]["hidden"]) for e in seen["edges"]] == [
            (kept["id"], "kept", False),
            (rude["id"], body, True),
            (after["id"], "after", False),
        ]
        assert seen["totalCount"] == 3
        node = reader.ok("query($id: ID!) { node(id: $id) { ... on Comment { body hidden } } }", id=rude["id"])
        assert node == {"node": {"body": body, "hidden": True}}
    assert product_team.ok(HIDE, id=after["id"], reason="off topic")["hideComment"]["hidden"] is True
    assert moderator.error_codes(HIDE, id=kept["id"], reason=" ") == ["BAD_USER_INPUT"]
    assert moderator.error_codes(HIDE, id=UNKNOWN_COMMENT, reason="x") == ["NOT_FOUND"]
    assert anonymous(url).error_codes(HIDE, id=kept["id"], reason="x") == ["UNAUTHENTICATED"]


# --- setIdeaStatus / mergeIdeas ---------------------------------------------------------------------------
def test_set_idea_status(url: str, product_team: Session, admin: Session, crowd: Crowd) -> None:
    author = crowd()
    idea = propose(author)
    assert author.error_codes(SET_STATUS, id=idea["id"], status="UNDER_REVIEW") == ["FORBIDDEN"]
    moved = product_team.ok(SET_STATUS, id=idea["id"], status="UNDER_REVIEW", note=" Looking at it ")["setIdeaStatus"]
    assert (moved["status"], moved["statusNote"]) == ("UNDER_REVIEW", "Looking at it")
    path = [("PLANNED", "Next quarter"), ("IN_PROGRESS", None), ("PLANNED", "Paused"), ("IN_PROGRESS", "Back on")]
    for status, note in path:
        moved = admin.ok(SET_STATUS, id=idea["id"], status=status, note=note)["setIdeaStatus"]
        assert (moved["status"], moved["statusNote"]) == (status, note)
    seen = anonymous(url).ok(IDEA, id=idea["id"])["idea"]
    assert (seen["status"], seen["statusNote"]) == ("IN_PROGRESS", "Back on")
    # moves IdeaStatus does not allow: CONFLICT
    for status in ("OPEN", "UNDER_REVIEW", "DECLINED", "IN_PROGRESS", "MERGED"):
        assert product_team.error_codes(SET_STATUS, id=idea["id"], status=status) == ["CONFLICT"], status
    product_team.ok(SET_STATUS, id=idea["id"], status="SHIPPED")
    for status in ("OPEN", "PLANNED", "IN_PROGRESS", "DECLINED"):  # SHIPPED is final
        assert product_team.error_codes(SET_STATUS, id=idea["id"], status=status) == ["CONFLICT"], status
    # DECLINED -> OPEN is allowed
    other = propose(author)
    product_team.ok(SET_STATUS, id=other["id"], status="DECLINED")
    assert product_team.ok(SET_STATUS, id=other["id"], status="OPEN")["setIdeaStatus"]["status"] == "OPEN"
    assert product_team.error_codes(SET_STATUS, id=UNKNOWN_IDEA, status="DECLINED") == ["NOT_FOUND"]
    assert product_team.error_codes(SET_STATUS, id=idea["id"], status="SHIPPED", note="n" * 2001) in (
        ["BAD_USER_INPUT"],
        ["CONFLICT"],
    )
    assert anonymous(url).error_codes(SET_STATUS, id=idea["id"], status="OPEN") == ["UNAUTHENTICATED"]


def test_merge_ideas_moves_votes_keeping_the_higher_weight(url: str, product_team: Session, crowd: Crowd) -> None:
    author = crowd("CUSTOMER", 1)
    source, target = propose(author, title=unique("source")), propose(author, title=unique("target"))
    both_higher_on_source = crowd("CUSTOMER")  # 3 on source, 1 on target -> 3
    both_higher_on_target = crowd("SUPPLIER")  # 1 on source, 2 on target -> 2
    only_source = crowd("PARTNER")  # 2 on source -> 2 on target
    only_target = crowd("EMPLOYEE")  # 1 on target -> 1
    vote(both_higher_on_source, source["id"], 3)
    vote(both_higher_on_source, target["id"], 1)
    vote(both_higher_on_target, source["id"], 1)
    vote(both_higher_on_target, target["id"], 2)
    vote(only_source, source["id"], 2)
    vote(only_target, target["id"], 1)
    comment(author, source["id"], "source talk")

    assert author.error_codes(MERGE, source=source["id"], target=target["id"]) == ["FORBIDDEN"]
    assert product_team.error_codes(MERGE, source=source["id"], target=source["id"]) == ["CONFLICT"]
    assert product_team.error_codes(MERGE, source=source["id"], target=UNKNOWN_IDEA) == ["NOT_FOUND"]
    assert product_team.error_codes(MERGE, source=UNKNOWN_IDEA, target=target["id"]) == ["NOT_FOUND"]
    merged = product_team.ok(MERGE, source=source["id"], target=target["id"])["mergeIdeas"]
    assert merged["id"] == target["id"] and merged["status"] == "OPEN"

    # once the merge settles: exactly one vote per stakeholder on the target, the higher weight
    # (every change the merge makes to the target adds: its final numbers mean all is applied)
    settled = wait_projections(author, target["id"], score=3 + 2 + 2 + 1, voters=4)
    assert settled["tally"] == [
        {"kind": "CUSTOMER", "voters": 1, "weight": 3},
        {"kind": "SUPPLIER", "voters": 1, "weight": 2},
        {"kind": "PARTNER", "voters": 1, "weight": 2},
        {"kind": "EMPLOYEE", "voters": 1, "weight": 1},
    ]
    gone = wait_projections(author, source["id"], score=0, voters=0, comments=1)
    assert gone["status"] == "MERGED" and gone["mergedInto"] == {"id": target["id"]} and gone["tally"] == []
    for voter, weight in ((both_higher_on_source, 3), (both_higher_on_target, 2), (only_source, 2), (only_target, 1)):
        assert idea_as(voter, target["id"])["myVote"] == {"weight": weight}  # type: ignore[index]
        assert idea_as(voter, source["id"])["myVote"] is None  # type: ignore[index]
    # votes on the merged source: CONFLICT; withdrawing there removes nothing
    assert only_source.error_codes(CAST, id=source["id"], w=1) == ["CONFLICT"]
    assert only_source.ok(WITHDRAW, id=source["id"]) == {"withdrawVote": False}

    # merging a MERGED idea again, or into a MERGED idea: CONFLICT
    third = propose(author)
    assert product_team.error_codes(MERGE, source=third["id"], target=source["id"]) == ["CONFLICT"]
    assert product_team.error_codes(MERGE, source=source["id"], target=third["id"]) == ["CONFLICT"]
    assert anonymous(url).error_codes(MERGE, source=third["id"], target=target["id"]) == ["UNAUTHENTICATED"]


# --- grantRole ----------------------------------------------------------------------------------------------
def test_grant_role(url: str, admin: Session) -> None:
    member = register(url, "CUSTOMER")
    assert member.error_codes(GRANT, id=member.id, role="ADMIN") == ["FORBIDDEN"]
    assert admin.ok(GRANT, id=member.id, role="MODERATOR")["grantRole"] == {"id": member.id, "role": "MODERATOR"}
    node = "query($id: ID!) { node(id: $id) { ... on Stakeholder { role } } }"
    assert anonymous(url).ok(node, id=member.id) == {"node": {"role": "MODERATOR"}}
    # the role is in the token: a new login carries it
    moderator = login(url, member.email, member.password)
    assert moderator.role == "MODERATOR"
    assert moderator.error_codes(GRANT, id=member.id, role="ADMIN") == ["FORBIDDEN"]
    assert admin.error_codes(GRANT, id=UNKNOWN_STAKEHOLDER, role="MODERATOR") == ["NOT_FOUND"]
    assert admin.error_codes(GRANT, id=member.id, role="OWNER") == ["BAD_USER_INPUT"]
    assert anonymous(url).error_codes(GRANT, id=member.id, role="ADMIN") == ["UNAUTHENTICATED"]
    assert login(url, ADMIN_EMAIL, admin.password).role == "ADMIN"


# --- the gateway's additions: API keys, updateProfile --------------------------------------------------------
CREATE_KEY = """
mutation($label: String!, $scope: ApiKeyScope!) {
  createApiKey(label: $label, scope: $scope) { id label scope createdAt revokedAt secret }
}"""
KEYS = "{ apiKeys { id label scope revokedAt } }"
REVOKE = "mutation($id: ID!) { revokeApiKey(id: $id) }"


def test_api_keys_as_bearer_tokens(url: str, crowd: Crowd) -> None:
    owner = register(url, "PARTNER")
    read = owner.ok(CREATE_KEY, label="dashboard", scope="READ")["createApiKey"]
    write = owner.ok(CREATE_KEY, label="sync", scope="READ_WRITE")["createApiKey"]
    assert (read["label"], read["scope"], read["revokedAt"]) == ("dashboard", "READ", None)
    assert read["secret"] and read["secret"] != write["secret"]
    listed = owner.ok(KEYS)["apiKeys"]
    assert [(k["id"], k["scope"]) for k in listed] == [(read["id"], "READ"), (write["id"], "READ_WRITE")]
    assert "secret" not in listed[0]

    reader, writer = GraphQL(url, read["secret"]), GraphQL(url, write["secret"])
    assert reader.ok("{ me { id kind } }") == {"me": {"id": owner.id, "kind": "PARTNER"}}
    idea = propose(owner)
    assert reader.ok("query($id: ID!) { idea(id: $id) { id } }", id=idea["id"])["idea"] == {"id": idea["id"]}
    # read scope is refused on every mutation
    assert reader.error_codes(PROPOSE, input={"title": "t", "body": "b"}) == ["FORBIDDEN"]
    assert reader.error_codes(CAST, id=idea["id"], w=1) == ["FORBIDDEN"]
    assert reader.error_codes(COMMENT, id=idea["id"], body="b") == ["FORBIDDEN"]
    assert reader.error_codes(CREATE_KEY, label="more", scope="READ_WRITE") == ["FORBIDDEN"]
    assert reader.error_codes(REVOKE, id=read["id"]) == ["FORBIDDEN"]
    assert reader.error_codes('mutation { updateProfile(input: {displayName: "x"}) { id } }') == ["FORBIDDEN"]
    # read-write scope may write, as the owner
    made = writer.ok(PROPOSE, input={"title": unique("by key"), "body": "b"})["proposeIdea"]
    assert made["author"]["id"] == owner.id
    # but no API key manages API keys: a leaked key cannot mint more, nor revoke the others
    assert writer.error_codes(CREATE_KEY, label="more", scope="READ_WRITE") == ["FORBIDDEN"]
    assert writer.error_codes(REVOKE, id=read["id"]) == ["FORBIDDEN"]

    # revoking: only the owner (someone else's key reads as unknown); then the key stops working
    assert crowd().error_codes(REVOKE, id=read["id"]) == ["NOT_FOUND"]
    assert owner.ok(REVOKE, id=read["id"]) == {"revokeApiKey": True}
    assert owner.ok(REVOKE, id=read["id"]) == {"revokeApiKey": False}
    assert reader.error_codes("{ me { id } }") == ["UNAUTHENTICATED"]
    revoked = {k["id"]: k["revokedAt"] for k in owner.ok(KEYS)["apiKeys"]}
    assert revoked[read["id"]] is not None and revoked[write["id"]] is None
    assert GraphQL(url, "ccp_not-a-real-key").error_codes("{ me { id } }") == ["UNAUTHENTICATED"]
    assert anonymous(url).error_codes(KEYS) == ["UNAUTHENTICATED"]
    assert anonymous(url).error_codes(CREATE_KEY, label="x", scope="READ") == ["UNAUTHENTICATED"]


def test_update_profile(url: str) -> None:
    who = register(url, "SUPPLIER", organization="Old Org")
    update = """
    mutation($input: UpdateProfileInput!) {
      updateProfile(input: $input) { id displayName kind role organization expertise }
    }"""
    changed = who.ok(update, input={"displayName": "New Name", "expertise": ["Search", "ui"]})["updateProfile"]
    assert changed == {
        "id": who.id,
        "displayName": "New Name",
        "kind": "SUPPLIER",
        "role": "MEMBER",
        "organization": "Old Org",  # left out: unchanged
        "expertise": ["search", "ui"],
    }
    assert who.ok(update, input={"organization": None})["updateProfile"]["organization"] is None
    node = "query($id: ID!) { node(id: $id) { ... on Stakeholder { displayName expertise } } }"
    assert anonymous(url).ok(node, id=who.id) == {"node": {"displayName": "New Name", "expertise": ["search", "ui"]}}
    assert who.error_codes(update, input={"displayName": "   "}) == ["BAD_USER_INPUT"]
    assert who.error_codes(update, input={"expertise": ["not a tag"]}) == ["BAD_USER_INPUT"]
    assert anonymous(url).error_codes(update, input={"displayName": "x"}) == ["UNAUTHENTICATED"]
