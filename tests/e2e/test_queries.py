"""Every query of the contract against the running platform: answers, semantics, refusals.

Each test makes its own data (unique titles, tags and words) on the shared session stack, and
filters lists by a tag or word of its own, so other tests' data never matters."""

from __future__ import annotations

from typing import Any

import pytest

from devstack.waiting import eventually_blocking
from tests.e2e.support import (
    IDEA,
    MERGE,
    SET_STATUS,
    STAKEHOLDER_FIELDS,
    Crowd,
    Session,
    anonymous,
    comment,
    propose,
    register,
    unique,
    unique_tag,
    unique_word,
    vote,
    wait_idea,
    wait_projections,
)

pytestmark = pytest.mark.e2e

NODE = """
query($id: ID!) {
  node(id: $id) {
    __typename id
    ... on Idea { title }
    ... on Stakeholder { displayName kind }
    ... on Comment { body idea { id } }
  }
}"""
ME = f"{{ me {{ {STAKEHOLDER_FIELDS} }} }}"
IDEAS = """
query($first: Int, $after: String, $sort: IdeaSort, $status: [IdeaStatus!], $tag: String, $search: String,
      $segment: StakeholderKind) {
  ideas(first: $first, after: $after, sort: $sort, status: $status, tag: $tag, search: $search, segment: $segment) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { cursor node { id title score voters commentCount status } }
  }
}"""
SIMILAR = "query($text: String!, $first: Int) { similarIdeas(text: $text, first: $first) { id title } }"
EXPERTS = "query($tag: String!, $first: Int) { experts(tag: $tag, first: $first) { id displayName expertise } }"
UNKNOWN_IDEA = "SWRlYTowMDAwMDAwMC0wMDAwLTQwMDAtODAwMC0wMDAwMDAwMDAwMDA="  # Idea:00000000-0000-4000-8000-...


def ids(connection: dict[str, Any]) -> list[str]:
    return [edge["node"]["id"] for edge in connection["edges"]]


def ideas(reader: Session | Any, **variables: Any) -> dict[str, Any]:
    result: dict[str, Any] = reader.ok(IDEAS, **variables)["ideas"]
    return result


# --- node ------------------------------------------------------------------------------------------
def test_node_resolves_every_type_from_its_id(url: str, crowd: Crowd) -> None:
    author = crowd("PARTNER")
    idea = propose(author)
    remark = comment(author, idea["id"], "node lookup")
    reader = crowd()

    found = reader.ok(NODE, id=idea["id"])["node"]
    assert found == {"__typename": "Idea", "id": idea["id"], "title": idea["title"]}
    found = reader.ok(NODE, id=author.id)["node"]
    assert found == {
        "__typename": "Stakeholder",
        "id": author.id,
        "displayName": author.display_name,
        "kind": "PARTNER",
    }
    found = reader.ok(NODE, id=remark["id"])["node"]
    assert found == {"__typename": "Comment", "id": remark["id"], "body": "node lookup", "idea": {"id": idea["id"]}}
    # Anonymous readers resolve public objects too.
    assert anonymous(url).ok(NODE, id=idea["id"])["node"]["id"] == idea["id"]

    # Unknown ids (well-formed or not) resolve to nothing, never an error that leaks.
    assert reader.ok(NODE, id=UNKNOWN_IDEA)["node"] is None
    assert reader.ok(NODE, id="not-a-global-id")["node"] is None


# --- me --------------------------------------------------------------------------------------------
def test_me_is_the_caller_and_null_when_anonymous(url: str) -> None:
    who = register(url, "SUPPLIER", organization="Acme", expertise=["Logistics", "api"])
    me = who.ok(ME)["me"]
    assert me["id"] == who.id and me["kind"] == "SUPPLIER" and me["role"] == "MEMBER"
    assert me["organization"] == "Acme"
    assert me["expertise"] == ["logistics", "api"]
    assert anonymous(url).ok(ME) == {"me": None}
    assert type(who.api)(url, "garbage.token.value").error_codes(ME) == ["UNAUTHENTICATED"]
    assert type(who.api)(url, "Bearer-less").error_codes(ME) == ["UNAUTHENTICATED"]


# --- idea ------------------------------------------------------------------------------------------
def test_idea_answers_every_field_with_the_stated_semantics(url: str, product_team: Session, crowd: Crowd) -> None:
    author = crowd("PARTNER")
    idea = propose(author, title="  Offline mode  ", body="Work without network.", tags=["Mobile", "offline"])
    assert idea["title"] == "Offline mode" and idea["tags"] == ["mobile", "offline"]
    assert idea["status"] == "OPEN" and idea["statusNote"] is None and idea["visibleTo"] == []
    assert (idea["voters"], idea["score"], idea["commentCount"], idea["tally"]) == (0, 0, 0, [])
    assert idea["author"] == {"id": author.id, "displayName": author.display_name, "kind": "PARTNER"}

    # tally: one entry per kind with votes, in enum order (CUSTOMER, SUPPLIER, PARTNER, EMPLOYEE)
    voters = [
        (crowd("EMPLOYEE", 0), 3),
        (crowd("CUSTOMER", 0), 2),
        (crowd("EMPLOYEE", 1), 1),
        (crowd("PARTNER", 1), 2),
    ]
    for voter, weight in voters:
        vote(voter, idea["id"], weight)
    seen = wait_projections(anonymous(url), idea["id"], score=8, voters=4)
    assert seen["tally"] == [
        {"kind": "CUSTOMER", "voters": 1, "weight": 2},
        {"kind": "PARTNER", "voters": 1, "weight": 2},
        {"kind": "EMPLOYEE", "voters": 2, "weight": 4},
    ]

    # myVote: the caller's own, null when anonymous or not voted
    query = "query($id: ID!) { idea(id: $id) { myVote { weight voter { id } idea { id } } } }"
    first_voter = voters[0][0]
    mine = first_voter.ok(query, id=idea["id"])["idea"]["myVote"]
    assert mine == {"weight": 3, "voter": {"id": first_voter.id}, "idea": {"id": idea["id"]}}
    assert anonymous(url).ok(query, id=idea["id"])["idea"]["myVote"] is None
    assert author.ok(query, id=idea["id"])["idea"]["myVote"] is None

    # revisions: every version, oldest first, version 1 the proposal
    refine = "mutation($id: ID!, $t: String) { refineIdea(id: $id, input: {title: $t}) { id } }"
    author.ok(refine, id=idea["id"], t="Offline mode v2")
    product_team.ok(refine, id=idea["id"], t="Offline mode v3")
    query = "query($id: ID!) { idea(id: $id) { title revisions { version title tags editor { id } editedAt } } }"
    seen = anonymous(url).ok(query, id=idea["id"])["idea"]
    assert seen["title"] == "Offline mode v3"
    revisions = seen["revisions"]
    assert [(r["version"], r["title"], r["editor"]["id"]) for r in revisions] == [
        (1, "Offline mode", author.id),
        (2, "Offline mode v2", author.id),
        (3, "Offline mode v3", product_team.id),
    ]
    assert revisions[0]["tags"] == ["mobile", "offline"]
    assert revisions[0]["editedAt"] <= revisions[1]["editedAt"] <= revisions[2]["editedAt"]

    # comments: oldest first, paged with after cursors
    talker = crowd("CUSTOMER", 1)
    bodies = [f"comment {n}" for n in range(5)]
    for body in bodies:
        comment(talker, idea["id"], body)
    query = """
    query($id: ID!, $after: String) {
      idea(id: $id) {
        commentCount
        comments(first: 2, after: $after) {
          totalCount pageInfo { hasNextPage endCursor } edges { cursor node { body author { id } } }
        }
      }
    }"""
    seen_bodies: list[str] = []
    after = None
    for _ in range(4):
        page = anonymous(url).ok(query, id=idea["id"], after=after)["idea"]["comments"]
        assert page["totalCount"] == 5
        seen_bodies += [edge["node"]["body"] for edge in page["edges"]]
        assert all(edge["node"]["author"]["id"] == talker.id for edge in page["edges"])
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen_bodies == bodies
    assert wait_idea(anonymous(url), idea["id"], lambda i: i["commentCount"] == 5)["commentCount"] == 5

    # createdAt/updatedAt; unknown ids are null; a malformed one too
    seen = anonymous(url).ok(IDEA, id=idea["id"])["idea"]
    assert seen["createdAt"] <= seen["updatedAt"]
    assert anonymous(url).ok(IDEA, id=UNKNOWN_IDEA) == {"idea": None}
    assert anonymous(url).ok(IDEA, id=author.id) == {"idea": None}  # a stakeholder's id is no idea


def test_merged_into_points_at_the_target(product_team: Session, crowd: Crowd) -> None:
    author = crowd()
    source, target = propose(author), propose(author)
    merged = product_team.ok(MERGE, source=source["id"], target=target["id"])["mergeIdeas"]
    assert merged["id"] == target["id"]
    query = "query($id: ID!) { idea(id: $id) { status mergedInto { id title } } }"
    assert author.ok(query, id=source["id"])["idea"] == {
        "status": "MERGED",
        "mergedInto": {"id": target["id"], "title": target["title"]},
    }
    assert author.ok(query, id=target["id"])["idea"] == {"status": "OPEN", "mergedInto": None}


# --- ideas -----------------------------------------------------------------------------------------
def test_ideas_sorts_rank_as_the_contract_says(url: str, crowd: Crowd) -> None:
    tag = unique_tag()
    author = crowd("EMPLOYEE")
    quiet, popular, discussed = (propose(author, title=unique(n), tags=[tag]) for n in ("quiet", "popular", "talk"))
    fans = [crowd("CUSTOMER"), crowd("SUPPLIER")]
    vote(fans[0], popular["id"], 3)
    vote(fans[1], popular["id"], 2)
    vote(fans[0], discussed["id"], 1)
    for n in range(3):
        comment(fans[n % 2], discussed["id"], f"talk {n}")
    wait_projections(author, popular["id"], score=5, voters=2)
    wait_projections(author, discussed["id"], score=1, voters=1, comments=3)

    assert ids(ideas(author, tag=tag)) == [popular["id"], discussed["id"], quiet["id"]]  # TOP is the default
    assert ids(ideas(author, tag=tag, sort="TOP")) == [popular["id"], discussed["id"], quiet["id"]]
    assert ids(ideas(author, tag=tag, sort="TRENDING")) == [popular["id"], discussed["id"], quiet["id"]]
    assert ids(ideas(author, tag=tag, sort="NEWEST")) == [discussed["id"], popular["id"], quiet["id"]]
    assert ids(ideas(author, tag=tag, sort="MOST_DISCUSSED"))[0] == discussed["id"]
    # Ties break on id: same key, a stable total order.
    tied = ids(ideas(author, tag=tag, sort="MOST_DISCUSSED"))[1:]
    assert sorted(tied) == sorted([popular["id"], quiet["id"]])
    assert ids(ideas(anonymous(url), tag=tag, sort="MOST_DISCUSSED"))[1:] == tied
    assert ideas(author, tag=tag)["totalCount"] == 3


def test_ideas_pages_with_after_cursors(url: str, crowd: Crowd) -> None:
    tag = unique_tag()
    author = crowd()
    made = [propose(author, title=f"page {n}", tags=[tag])["id"] for n in range(7)]
    newest_first = list(reversed(made))
    for sort in ("NEWEST", "TOP"):
        seen: list[str] = []
        after = None
        pages = 0
        while True:
            page = ideas(anonymous(url), tag=tag, sort=sort, first=3, after=after)
            pages += 1
            assert page["totalCount"] == 7
            assert len(page["edges"]) <= 3
            seen += ids(page)
            if page["edges"]:
                assert page["pageInfo"]["endCursor"] == page["edges"][-1]["cursor"]
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
        assert pages == 3
        assert sorted(seen) == sorted(made) and len(seen) == 7
        if sort == "NEWEST":
            assert seen == newest_first
    # An edge's own cursor resumes right after it.
    page = ideas(anonymous(url), tag=tag, sort="NEWEST", first=5)
    resumed = ideas(anonymous(url), tag=tag, sort="NEWEST", first=2, after=page["edges"][1]["cursor"])
    assert ids(resumed) == newest_first[2:4]
    # first: 0 gives no edges but the count; over 100 or negative is refused; a bad cursor too.
    empty = ideas(anonymous(url), tag=tag, first=0)
    assert empty["edges"] == [] and empty["totalCount"] == 7
    assert anonymous(url).error_codes(IDEAS, tag=tag, first=101) == ["BAD_USER_INPUT"]
    assert anonymous(url).error_codes(IDEAS, tag=tag, first=-1) == ["BAD_USER_INPUT"]
    assert anonymous(url).error_codes(IDEAS, tag=tag, after="not a cursor") == ["BAD_USER_INPUT"]


def test_ideas_filters_by_status_tag_search_and_segment(product_team: Session, crowd: Crowd) -> None:
    tag, word, other_word = unique_tag(), unique_word(), unique_word()
    author = crowd("PARTNER")
    open_idea = propose(author, tags=[tag], body=f"About {word} and more.")
    review = propose(author, tags=[tag])
    declined = propose(author, title=f"Declined {other_word}", tags=[tag, "other"], body=f"Also {word}.")
    merged = propose(author, tags=[tag])
    product_team.ok(SET_STATUS, id=review["id"], status="UNDER_REVIEW")
    product_team.ok(SET_STATUS, id=declined["id"], status="DECLINED", note="Not now")
    product_team.ok(MERGE, source=merged["id"], target=open_idea["id"])

    reader = crowd()
    # MERGED ideas are left out unless status asks for them
    listed = ideas(reader, tag=tag, sort="NEWEST")
    assert ids(listed) == [declined["id"], review["id"], open_idea["id"]] and listed["totalCount"] == 3
    assert ids(ideas(reader, tag=tag, status=["MERGED"])) == [merged["id"]]
    both = ideas(reader, tag=tag, status=["OPEN", "MERGED"], sort="NEWEST")
    assert ids(both) == [merged["id"], open_idea["id"]] and both["totalCount"] == 2
    assert ids(ideas(reader, tag=tag, status=["DECLINED"])) == [declined["id"]]
    assert [e["node"]["status"] for e in ideas(reader, tag=tag, status=["UNDER_REVIEW"])["edges"]] == ["UNDER_REVIEW"]

    # tag (normalised like the tags themselves)
    assert ideas(reader, tag=tag.upper())["totalCount"] == 3
    assert ideas(reader, tag=unique_tag())["totalCount"] == 0
    # search: full-text over title and body
    found = ideas(reader, search=word, sort="NEWEST")
    assert ids(found) == [declined["id"], open_idea["id"]] and found["totalCount"] == 2
    assert ids(ideas(reader, search=f"{word} -{other_word}")) == [open_idea["id"]]
    assert ids(ideas(reader, search=other_word)) == [declined["id"]]
    assert ideas(reader, search=word, tag="other")["totalCount"] == 1

    # segment: only ideas with that kind's votes, ranked by that kind's weight
    customer, supplier, supplier2 = crowd("CUSTOMER"), crowd("SUPPLIER"), crowd("SUPPLIER", 1)
    vote(customer, open_idea["id"], 3)
    vote(supplier, review["id"], 1)
    vote(supplier, open_idea["id"], 1)
    vote(supplier2, review["id"], 1)
    wait_projections(reader, open_idea["id"], score=4, voters=2)
    wait_projections(reader, review["id"], score=2, voters=2)
    by_supplier = ideas(reader, tag=tag, segment="SUPPLIER")
    assert ids(by_supplier) == [review["id"], open_idea["id"]] and by_supplier["totalCount"] == 2
    by_customer = ideas(reader, tag=tag, segment="CUSTOMER")
    assert ids(by_customer) == [open_idea["id"]] and by_customer["totalCount"] == 1
    assert ideas(reader, tag=tag, segment="PARTNER")["totalCount"] == 0
    assert ids(ideas(reader, tag=tag))[:2] == [open_idea["id"], review["id"]]  # overall TOP differs


# --- similarIdeas ----------------------------------------------------------------------------------
def test_similar_ideas_finds_near_duplicates_first(url: str, crowd: Crowd) -> None:
    word = unique_word()
    author = crowd()
    close = propose(author, title=f"Export {word} reports to spreadsheet", body="CSV and XLSX.")
    far = propose(author, title=f"Dark theme {word}", body="Night colours.")
    propose(author, title=unique("Unrelated"), body="Nothing alike.")
    found = anonymous(url).ok(SIMILAR, text=f"export {word} reports to a spreadsheet", first=5)["similarIdeas"]
    found_ids = [i["id"] for i in found]
    assert found_ids[0] == close["id"]
    assert far["id"] in found_ids
    assert len(anonymous(url).ok(SIMILAR, text=f"export {word} reports", first=1)["similarIdeas"]) == 1
    assert anonymous(url).ok(SIMILAR, text=f"export {word}", first=0) == {"similarIdeas": []}
    assert anonymous(url).error_codes(SIMILAR, text="export", first=101) == ["BAD_USER_INPUT"]
    assert anonymous(url).error_codes(SIMILAR, text="export", first=-1) == ["BAD_USER_INPUT"]


# --- experts ---------------------------------------------------------------------------------------
def test_experts_are_ranked_by_activity_on_the_tag(url: str) -> None:
    tag = unique_tag()
    idle = register(url, expertise=[tag])
    proposer = register(url, "EMPLOYEE", expertise=[tag, "other"])
    voter = register(url, "SUPPLIER", expertise=[tag.upper()])
    outsider = register(url)  # active on the tag, but does not list it as expertise
    idea = propose(proposer, tags=[tag])  # proposing counts more than commenting, which counts more than voting
    vote(voter, idea["id"], 1)
    comment(outsider, idea["id"])
    propose(outsider, tags=[tag])

    expected = [proposer.id, voter.id, idle.id]
    found = eventually_blocking(
        lambda: (lambda got: got if [s["id"] for s in got] == expected else None)(
            anonymous(url).ok(EXPERTS, tag=tag)["experts"]
        ),
        what="the experts ranked by their activity",
    )
    assert all(tag in s["expertise"] for s in found)
    assert [s["id"] for s in anonymous(url).ok(EXPERTS, tag=tag, first=2)["experts"]] == expected[:2]
    assert anonymous(url).ok(EXPERTS, tag=unique_tag())["experts"] == []
    assert anonymous(url).error_codes(EXPERTS, tag=tag, first=101) == ["BAD_USER_INPUT"]
