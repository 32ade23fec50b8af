"""Data generation and the bulk path: a random but reproducible platform history (stakeholders,
ideas, votes, comments, triage) and the exact state the API would leave after replaying it,
projections included, written straight into each service's database with COPY.

The history, in the order an API replay applies it (`replay_through_api` does exactly that):
1. every stakeholder registers; an ADMIN grants PRODUCT_TEAM / MODERATOR roles;
2. every idea is proposed (all OPEN);
3. every vote is cast (one per (idea, voter); Zipf over ideas; weights 1..3);
4. every comment is added (replies after their parents);
5. the product team moves ideas along IdeaStatus (each step with a note);
6. the product team merges some OPEN ideas into others (votes move, the higher weight wins).

From it, per service (what its consumers would have computed from the events):
- stakeholders: accounts (one precomputed argon2 hash for all), idea_activity (+3 for proposing
  an idea, +2 per comment on it, +1 for casting a vote on it), idea_tags;
- ideas: ideas with tallies (overall and per kind), comment_count, recent_score and the day
  buckets (idea_score_day) of the last 7 UTC days, revision 1 of every idea;
- votes: the votes after the merges, the idea_state projection;
- comments: the comments, the idea_visibility projection.
No outbox rows: nothing is left to publish (and no inbox rows: no consumer saw these events).

The rules are the services' own: who sees an idea (shared/visibility.py), the status workflow,
the trending window and the tally's columns (services/ideas/domain.py), how a merge moves votes
and how the moves count (services/votes/domain.py, services/ideas/domain.py), the activity
credits (services/stakeholders/domain.py) and official comments (services/comments/domain.py);
every table and column written is named by the services' SQLModel definitions. Where the bulk
path takes a shortcut of its own, for speed, a comment says so."""

from __future__ import annotations

import asyncio
import bisect
import itertools
import math
import random
import time
import uuid
from array import array
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cached_property
from typing import Any, NamedTuple

import asyncpg
from sqlmodel import SQLModel

from services.comments.domain import is_official
from services.comments.models import Comment, IdeaVisibility
from services.ideas import domain as idea_rules
from services.ideas.models import Idea, IdeaRevision, IdeaScoreDay
from services.stakeholders.domain import COMMENT_WEIGHT, IDEA_WEIGHT, VOTE_WEIGHT
from services.stakeholders.models import IdeaActivity, IdeaTags, Stakeholder
from services.votes.domain import ACCEPTING_STATUSES, StoredVote, compute_moves, moved_events, target_writes
from services.votes.models import IdeaState, Vote
from shared.auth import Principal
from shared.events.catalogue import IdeaStatus, Role, StakeholderKind
from shared.visibility import can_see

KINDS = tuple(kind.value for kind in idea_rules.KINDS)  # the tally's order
KIND_SHARES = (0.45, 0.20, 0.15, 0.20)
# Final statuses of the ideas that are not merged.
STATUS_SHARES = {
    "OPEN": 0.72,
    "UNDER_REVIEW": 0.08,
    "PLANNED": 0.06,
    "IN_PROGRESS": 0.04,
    "SHIPPED": 0.04,
    "DECLINED": 0.06,
}
WEIGHTS = (1, 2, 3)
WEIGHT_SHARES = (0.5, 0.3, 0.2)
NOBODY = uuid.UUID(int=0)  # an author id no seeded stakeholder has
PASSWORD = "bench password 123"
SEARCH_WORD = "dashboard"  # a word of the vocabulary: present in seeded titles and bodies

_VOCABULARY = (
    "dashboard export report filter search sync offline mobile tablet desktop widget chart graph table "
    "calendar reminder notification alert email digest summary template workflow approval review comment "
    "thread mention tag label category folder archive backup restore import upload download share link "
    "permission role team group member invite onboarding tutorial help guide shortcut keyboard theme dark "
    "light contrast font size layout grid list card board kanban timeline roadmap milestone release "
    "version history audit log metric analytics insight forecast budget invoice payment order delivery "
    "shipment tracking inventory stock supplier partner customer employee contract renewal quote price "
    "discount catalog product feature bug crash performance speed latency cache memory battery storage "
    "privacy security password login token session single sign integration api webhook plugin extension "
    "automation rule trigger schedule batch queue retry error warning status progress priority estimate "
    "effort value impact risk quality test feedback survey rating score vote idea proposal request "
    "translation language accessibility screen reader voice video audio image photo scan barcode map "
    "location region currency tax compliance policy consent retention deletion anonymous profile avatar "
    "signature document pdf spreadsheet print preview draft publish schedule pin favorite bookmark recent"
)
WORDS = tuple(_VOCABULARY.split())
VERBS = ("Add", "Improve", "Support", "Allow", "Simplify", "Speed up", "Redesign", "Automate", "Show", "Fix")
_TAG_LIST = (
    "ui ux mobile api integration reporting analytics security privacy performance billing onboarding "
    "search notifications accessibility export import workflow automation sso compliance logistics "
    "inventory pricing catalog support docs localization offline collaboration"
)
TAGS = tuple(_TAG_LIST.split())
FIRST_NAMES = (
    "Ada",
    "Ben",
    "Chen",
    "Dana",
    "Eli",
    "Fatima",
    "Gus",
    "Hana",
    "Ivan",
    "Jo",
    "Kai",
    "Lea",
    "Mo",
    "Nia",
    "Omar",
    "Pia",
    "Quinn",
    "Rui",
    "Sara",
    "Tom",
    "Uma",
    "Vik",
    "Wen",
    "Yara",
    "Zoe",
)
LAST_NAMES = (
    "Ahn",
    "Berg",
    "Costa",
    "Diaz",
    "Eze",
    "Fox",
    "Gray",
    "Hale",
    "Ito",
    "Jain",
    "Kent",
    "Lund",
    "Moreau",
    "Novak",
    "Okafor",
    "Park",
    "Quint",
    "Roth",
    "Silva",
    "Tan",
    "Ueda",
    "Vega",
    "Wolf",
)
ORG_WORDS = (
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Stark",
    "Wayne",
    "Tyrell",
    "Cyberdyne",
    "Soylent",
    "Hooli",
    "Vandelay",
    "Wonka",
    "Oscorp",
    "Aperture",
    "Pied Piper",
)


@dataclass(frozen=True)
class SeedConfig:
    stakeholders: int
    ideas: int
    votes: int
    comments: int
    seed: int = 42
    # Stakeholders registered over the 30 days before this span; ideas, votes and comments
    # spread over it, up to now. 0: everything happens now (the API replay's timeline).
    span_days: float = 30.0
    zipf_s: float = 1.0
    merged_share: float = 0.02
    restricted_share: float = 0.12
    staff_share: float = 0.01
    moderator_share: float = 0.01
    reply_share: float = 0.25

    @classmethod
    def at_scale(cls, scale: float, min_stakeholders: int = 0, **overrides: Any) -> SeedConfig:
        """1.0: 10,000 stakeholders, 100,000 ideas, 1,000,000 votes, 200,000 comments."""
        return cls(
            stakeholders=max(min_stakeholders, 20, round(10_000 * scale)),
            ideas=max(20, round(100_000 * scale)),
            votes=max(0, round(1_000_000 * scale)),
            comments=max(0, round(200_000 * scale)),
            **overrides,
        )


@dataclass
class Person:
    id: uuid.UUID
    email: str
    display_name: str
    kind: str
    role: str
    organization: str | None
    expertise: list[str]
    created_at: datetime

    @cached_property
    def principal(self) -> Principal:
        """This stakeholder as the services see a caller."""
        return Principal(id=self.id, kind=StakeholderKind(self.kind), role=Role(self.role))


@dataclass
class IdeaData:
    id: uuid.UUID
    author: int
    title: str
    body: str
    tags: list[str]
    visible_to: list[str]
    status: str  # final status
    steps: tuple[str, ...]  # status changes after the votes and comments (empty for OPEN and MERGED)
    merged_into: int | None
    created_at: datetime
    # projections (filled by Dataset.project)
    voters: int = 0
    score: int = 0
    by_kind: list[list[int]] = field(default_factory=lambda: [[0, 0] for _ in KINDS])
    comment_count: int = 0
    recent_score: int = 0

    @property
    def status_note(self) -> str | None:
        return note_for(self.steps[-1]) if self.steps else None


@dataclass
class CommentData:
    id: uuid.UUID
    idea: int
    author: int
    parent: int | None
    body: str
    created_at: datetime
    official: bool


@dataclass
class FinalVote:
    weight: int
    previous_weight: int | None
    kind: str
    cast_at: float
    updated_at: float


def note_for(status: str) -> str:
    return f"Moved to {status} by the product team."


def _walks_from_open() -> dict[str, tuple[str, ...]]:
    """Per status, the shortest walk of status changes from OPEN that the ideas service's
    workflow allows (services/ideas/domain.py TRANSITIONS; MERGED only through a merge)."""
    walks: dict[IdeaStatus, tuple[str, ...]] = {IdeaStatus.OPEN: ()}
    frontier: list[IdeaStatus] = [IdeaStatus.OPEN]
    while frontier:
        reached: list[IdeaStatus] = []
        for status in frontier:
            for nxt in sorted(idea_rules.TRANSITIONS[status]):
                if nxt != IdeaStatus.MERGED and nxt not in walks:
                    walks[nxt] = (*walks[status], nxt.value)
                    reached.append(nxt)
        frontier = reached
    return {status.value: walk for status, walk in walks.items()}


STATUS_STEPS = _walks_from_open()


def visible(visible_to: Collection[str], author_id: uuid.UUID, person: Person) -> bool:
    """The services' visibility rule (shared/visibility.py can_see) for a seeded stakeholder:
    seed.py's only call to it, so a change of its signature is a change here only."""
    return can_see(person.principal, visible_to, author_id)


def _allocate(n: int, shares: dict[str, float], at_least_one: bool) -> list[str]:
    """n labels in the given shares (largest remainders), each present once when asked and possible."""
    raw = {k: n * s / sum(shares.values()) for k, s in shares.items()}
    counts = {k: int(v) for k, v in raw.items()}
    for k in sorted(raw, key=lambda k: raw[k] - counts[k], reverse=True)[: n - sum(counts.values())]:
        counts[k] += 1
    if at_least_one and n >= len(shares):
        for k in shares:
            while counts[k] == 0:
                donor = max(counts, key=lambda d: counts[d])
                counts[donor] -= 1
                counts[k] += 1
    return [k for k, c in counts.items() for _ in range(c)]


def _ts(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


class Dataset:
    """The history and its projections. Votes are kept in compact arrays (cast order)."""

    def __init__(self, config: SeedConfig, now: datetime | None = None) -> None:
        self.config = config
        self.now = now or datetime.now(UTC)
        self.rng = random.Random(config.seed)
        self.people: list[Person] = []
        self.ideas: list[IdeaData] = []
        self.comments: list[CommentData] = []
        self.vote_idea = array("i")
        self.vote_voter = array("i")
        self.vote_weight = array("b")
        self.vote_cast = array("d")
        self.merges: list[tuple[int, int]] = []
        # Ideas by popularity rank (Zipf) and the cumulative weights to sample them.
        self.by_rank: list[int] = []
        self.cum_weights: list[float] = []
        # Results of project().
        self.final_overrides: dict[tuple[int, int], FinalVote] = {}  # (idea, voter) -> vote after the merges
        self.score_days: dict[tuple[int, date], int] = {}
        self.idea_activity: dict[tuple[int, int], int] = {}
        self.final_vote_count = 0
        self.password_hash = ""
        self._pool: list[str] = []
        self._eligible_cache: dict[tuple[str, ...], list[int]] = {}

    # --- generation --------------------------------------------------------------------------
    @classmethod
    def generate(cls, config: SeedConfig, now: datetime | None = None) -> Dataset:
        ds = cls(config, now)
        ds._people()
        ds._ideas()
        ds._votes()
        ds._comments()
        ds.project()
        return ds

    def _time(self, lo: float, hi: float) -> float:
        return hi if hi <= lo else lo + self.rng.random() * (hi - lo)

    def _people(self) -> None:
        c, rng = self.config, self.rng
        now = self.now.timestamp()
        span = c.span_days * 86400
        kinds = _allocate(c.stakeholders, dict(zip(KINDS, KIND_SHARES, strict=True)), True)
        rng.shuffle(kinds)
        roles = ["MEMBER"] * c.stakeholders
        n_staff = max(1, round(c.stakeholders * c.staff_share))
        n_mod = max(1, round(c.stakeholders * c.moderator_share))
        employees = [i for i, k in enumerate(kinds) if k == "EMPLOYEE"]
        others = [i for i in range(c.stakeholders) if kinds[i] != "EMPLOYEE"]
        for i in rng.sample(employees, min(n_staff, len(employees))):
            roles[i] = "PRODUCT_TEAM"
        for i in rng.sample(others, min(n_mod, len(others))):
            roles[i] = "MODERATOR"
        for i in range(c.stakeholders):
            org = (
                f"{rng.choice(ORG_WORDS)} {rng.choice(('Ltd', 'GmbH', 'Inc', 'SA', 'BV'))}"
                if rng.random() < 0.7
                else None
            )
            expertise = rng.sample(TAGS, rng.randint(0, 3))
            self.people.append(
                Person(
                    id=uuid.UUID(int=rng.getrandbits(128), version=4),
                    email=f"bench-{i:06d}@example.org",
                    display_name=f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}",
                    kind=kinds[i],
                    role=roles[i],
                    organization=org,
                    expertise=expertise,
                    created_at=_ts(self._time(now - span - 30 * 86400, now - span) if span else now),
                )
            )

    def _sentences(self) -> list[str]:
        """A pool of random sentences over the vocabulary; texts are drawn from it (fast)."""
        if not self._pool:
            rng = self.rng
            for _ in range(4000):
                words = rng.choices(WORDS, k=rng.randint(6, 14))
                self._pool.append(words[0].capitalize() + " " + " ".join(words[1:]) + ".")
        return self._pool

    def _text(self, n_sentences: int) -> str:
        return " ".join(self.rng.choices(self._sentences(), k=n_sentences))

    def _ideas(self) -> None:
        c, rng = self.config, self.rng
        now = self.now.timestamp()
        span = c.span_days * 86400
        n = c.ideas
        n_merged = min(n // 2, max(1 if n >= 10 else 0, round(n * c.merged_share)))
        statuses = _allocate(n - n_merged, STATUS_SHARES, at_least_one=n >= 20) + ["MERGED"] * n_merged
        rng.shuffle(statuses)
        n_restricted = max(1 if n >= 10 else 0, round(n * c.restricted_share))
        restricted = set(rng.sample(range(n), n_restricted))
        for i in range(n):
            visible_to: list[str] = []
            if i in restricted:
                chosen = set(rng.sample(KINDS, rng.randint(1, 2)))
                visible_to = [k for k in KINDS if k in chosen]
            a, b, noun = rng.choice(WORDS), rng.choice(WORDS), rng.choice(WORDS)
            title = f"{rng.choice(VERBS)} {a} {b} for {noun} #{i + 1}"
            status = statuses[i]
            self.ideas.append(
                IdeaData(
                    id=uuid.UUID(int=rng.getrandbits(128), version=4),
                    author=rng.randrange(c.stakeholders),
                    title=title,
                    body=self._text(rng.randint(2, 6)),
                    tags=rng.sample(TAGS, rng.randint(0, 3)),
                    visible_to=visible_to,
                    status=status,
                    steps=STATUS_STEPS.get(status, ()),
                    merged_into=None,
                    created_at=_ts(self._time(now - span, now) if span else now),
                )
            )
        # Merges: each source (OPEN at the time) into an idea that is never merged itself.
        sources = [i for i, idea in enumerate(self.ideas) if idea.status == "MERGED"]
        targets = [i for i, idea in enumerate(self.ideas) if idea.status != "MERGED"]
        for s in sources:
            t = rng.choice(targets)
            self.ideas[s].merged_into = t
            self.merges.append((s, t))
        # Popularity: a random order of the ideas, Zipf weights by rank.
        self.by_rank = list(range(n))
        rng.shuffle(self.by_rank)
        total = 0.0
        for rank in range(n):
            total += 1.0 / (rank + 1) ** c.zipf_s
            self.cum_weights.append(total)

    def zipf_idea(self, rng: random.Random) -> int:
        """An idea index, Zipf-distributed over the popularity ranks."""
        r = rng.random() * self.cum_weights[-1]
        return self.by_rank[min(bisect.bisect_left(self.cum_weights, r), len(self.by_rank) - 1)]

    def eligible(self, idea: IdeaData) -> list[int]:
        """Stakeholders who may see (so vote and comment on) the idea, one list per visible_to
        (its author is left out unless the rule lets them in anyway: simpler, still valid)."""
        key = tuple(idea.visible_to)
        if key not in self._eligible_cache:
            self._eligible_cache[key] = [i for i, p in enumerate(self.people) if visible(key, NOBODY, p)]
        return self._eligible_cache[key]

    def sees(self, person: int, idea_index: int) -> bool:
        idea = self.ideas[idea_index]
        return visible(idea.visible_to, self.people[idea.author].id, self.people[person])

    def _votes(self) -> None:
        """Per idea: a Zipf share of the votes, capped by who may vote (water-filling), then
        distinct voters sampled among them."""
        c, rng = self.config, self.rng
        now = self.now.timestamp()
        n = len(self.ideas)
        p = [0.0] * n
        for rank, idea_index in enumerate(self.by_rank):
            p[idea_index] = 1.0 / (rank + 1) ** c.zipf_s
        cap = [len(self.eligible(idea)) for idea in self.ideas]
        wanted = min(c.votes, sum(cap))
        counts = [0.0] * n
        free = set(range(n))
        remaining = float(wanted)
        while remaining > 0.5 and free:
            mass = sum(p[i] for i in free)
            saturated = [i for i in free if remaining * p[i] / mass >= cap[i] - counts[i]]
            if not saturated:
                for i in free:
                    counts[i] += remaining * p[i] / mass
                break
            for i in saturated:
                remaining -= cap[i] - counts[i]
                counts[i] = float(cap[i])
                free.discard(i)
        whole = [min(cap[i], math.floor(counts[i])) for i in range(n)]
        short = wanted - sum(whole)
        for i in sorted(range(n), key=lambda i: counts[i] - whole[i], reverse=True):
            if short <= 0:
                break
            if whole[i] < cap[i]:
                whole[i] += 1
                short -= 1
        for idea_index, count in enumerate(whole):
            if count <= 0:
                continue
            idea = self.ideas[idea_index]
            voters = rng.sample(self.eligible(idea), count)
            lo = idea.created_at.timestamp()
            self.vote_idea.extend([idea_index] * count)
            self.vote_voter.extend(voters)
            self.vote_weight.extend(rng.choices(WEIGHTS, WEIGHT_SHARES, k=count))
            self.vote_cast.extend(self._time(lo, now) for _ in range(count))

    def _comments(self) -> None:
        c, rng = self.config, self.rng
        now = self.now.timestamp()
        per_idea: dict[int, list[int]] = {}
        for index in range(c.comments):
            idea_index = self.zipf_idea(rng)
            idea = self.ideas[idea_index]
            author = rng.choice(self.eligible(idea))
            siblings = per_idea.setdefault(idea_index, [])
            parent = rng.choice(siblings) if siblings and rng.random() < c.reply_share else None
            lo = self.comments[parent].created_at.timestamp() if parent is not None else idea.created_at.timestamp()
            self.comments.append(
                CommentData(
                    id=uuid.UUID(int=rng.getrandbits(128), version=4),
                    idea=idea_index,
                    author=author,
                    parent=parent,
                    body=f"{self._text(rng.randint(1, 3))} (c{index + 1})",
                    created_at=_ts(self._time(lo, now)),
                    official=is_official(self.people[author].principal),
                )
            )
            siblings.append(index)

    # --- projections -------------------------------------------------------------------------
    def project(self) -> None:
        """What the consumers compute from the history's events (see the module docstring)."""
        now = self.now.timestamp()
        today = idea_rules.score_day(self.now)
        days = self.score_days
        activity = self.idea_activity
        counted: dict[date, bool] = {}

        def credit(person: int, idea_index: int, amount: int) -> None:
            activity[(person, idea_index)] = activity.get((person, idea_index), 0) + amount

        def add_day(idea_index: int, day: date, delta: int) -> None:
            """A change of the idea's score on `day`, kept as the ideas service keeps it."""
            inside = counted.get(day)
            if inside is None:
                inside = counted[day] = idea_rules.in_window(day, self.now)
            if inside and delta != 0:
                days[(idea_index, day)] = days.get((idea_index, day), 0) + delta

        for index, idea in enumerate(self.ideas):
            credit(idea.author, index, IDEA_WEIGHT)
        # Casts: day buckets and activity credits (moves credit nothing).
        ideas, people = self.ideas, self.people
        day_of: dict[int, date] = {}
        for idea_index, voter, weight, cast in zip(
            self.vote_idea, self.vote_voter, self.vote_weight, self.vote_cast, strict=True
        ):
            day_key = int(cast // 86400)
            day = day_of.get(day_key)
            if day is None:
                day = day_of[day_key] = idea_rules.score_day(_ts(cast))
            add_day(idea_index, day, weight)
            credit(voter, idea_index, VOTE_WEIGHT)
        for comment in self.comments:
            ideas[comment.idea].comment_count += 1
            credit(comment.author, comment.idea, COMMENT_WEIGHT)
        # Merges, in order, as the votes service moves the votes of each source to its target
        # (compute_moves, target_writes) and the ideas service counts its votes.moved events.
        involved = {s for s, _ in self.merges} | {t for _, t in self.merges}
        on: dict[int, dict[int, FinalVote]] = {i: {} for i in involved}
        for idea_index, voter, weight, cast in zip(
            self.vote_idea, self.vote_voter, self.vote_weight, self.vote_cast, strict=True
        ):
            if idea_index in involved:
                on[idea_index][voter] = FinalVote(weight, None, people[voter].kind, cast, cast)
        person_of = {p.id: i for i, p in enumerate(people)}

        def stored(voter: int, vote: FinalVote) -> StoredVote:
            return StoredVote(people[voter].id, StakeholderKind(vote.kind), vote.weight, _ts(vote.cast_at))

        for source, target in self.merges:
            moved, kept = on[source], on[target]
            moves = compute_moves(
                [stored(voter, vote) for voter, vote in moved.items()],
                {people[voter].id: stored(voter, kept[voter]) for voter in moved if voter in kept},
            )
            for move in target_writes(moves):
                voter = person_of[move.voter_id]
                cast_at = (kept[voter] if voter in kept else moved[voter]).cast_at
                kept[voter] = FinalVote(
                    move.target_new_weight, move.target_old_weight, move.voter_kind.value, cast_at, now
                )
            on[source] = {}
            index_of = {ideas[source].id: source, ideas[target].id: target}
            for event in moved_events(ideas[source].id, ideas[target].id, moves):
                for change in idea_rules.sum_deltas(idea_rules.moved_deltas(event)):
                    add_day(index_of[change.idea_id], today, change.weight)  # the merge's day
        for idea_index in involved:
            for voter, vote in on[idea_index].items():
                self.final_overrides[(idea_index, voter)] = vote
        # Tallies from the final votes (bulk shortcut: what every event's deltas add up to,
        # counted once instead of event by event).
        kind_index = {k: i for i, k in enumerate(KINDS)}
        self.final_vote_count = 0
        for idea_index, _, weight, kind in self.final_votes():
            self.final_vote_count += 1
            idea = ideas[idea_index]
            idea.voters += 1
            idea.score += weight
            tally = idea.by_kind[kind_index[kind]]
            tally[0] += 1
            tally[1] += weight
        for (idea_index, _), delta in days.items():
            ideas[idea_index].recent_score += delta

    def final_votes(self) -> Iterator[tuple[int, int, int, str]]:
        """(idea, voter, weight, kind) of every vote after the merges."""
        people = self.people
        for idea_index, voter, weight, _, vote in self._final_rows():
            yield idea_index, voter, weight, vote.kind if vote else people[voter].kind

    def _final_rows(self) -> Iterator[tuple[int, int, int, float, FinalVote | None]]:
        overrides = self.final_overrides
        involved = {s for s, _ in self.merges} | {t for _, t in self.merges}
        for idea_index, voter, weight, cast in zip(
            self.vote_idea, self.vote_voter, self.vote_weight, self.vote_cast, strict=True
        ):
            if idea_index in involved:
                continue
            yield idea_index, voter, weight, cast, None
        for (idea_index, voter), vote in sorted(overrides.items()):
            yield idea_index, voter, vote.weight, vote.cast_at, vote

    def votes_of(self, people: Iterable[int]) -> dict[int, set[int]]:
        """The ideas each of these stakeholders has a vote on (after the merges)."""
        wanted: dict[int, set[int]] = {p: set() for p in people}
        for idea_index, voter, _, _, _ in self._final_rows():
            if voter in wanted:
                wanted[voter].add(idea_index)
        return wanted

    def release_history(self) -> None:
        """Drop what only the bulk load needed (the votes, comments and projections): the load
        generator keeps the stakeholders and ideas, and a small heap for the garbage collector."""
        self.vote_idea, self.vote_voter, self.vote_weight, self.vote_cast = (
            array("i"),
            array("i"),
            array("b"),
            array("d"),
        )
        self.final_overrides, self.score_days, self.idea_activity = {}, {}, {}
        self.comments, self._eligible_cache, self._pool = [], {}, []

    def members(self, n: int) -> list[int]:
        """n MEMBER stakeholders (benchmark accounts), spread over the kinds."""
        by_kind = [[i for i, p in enumerate(self.people) if p.role == "MEMBER" and p.kind == k] for k in KINDS]
        out: list[int] = []
        for group in itertools.zip_longest(*by_kind):
            out.extend(i for i in group if i is not None)
        return out[:n]

    def accepts_votes_from(self, idea_index: int, person: int) -> bool:
        """The votes service's check_can_vote, as a yes or no: visible, and in a status that takes votes."""
        return self.ideas[idea_index].status in ACCEPTING_STATUSES and self.sees(person, idea_index)

    # --- rows for COPY -----------------------------------------------------------------------
    def stakeholder_rows(self, password_hash: str) -> Iterator[tuple[Any, ...]]:
        for p in self.people:
            yield (
                p.id,
                p.email,
                password_hash,
                p.display_name,
                p.kind,
                p.role,
                p.organization,
                p.expertise,
                p.created_at,
                p.created_at,
            )

    def idea_activity_rows(self) -> Iterator[tuple[Any, ...]]:
        for (person, idea_index), value in self.idea_activity.items():
            yield self.people[person].id, self.ideas[idea_index].id, value

    def idea_tags_rows(self) -> Iterator[tuple[Any, ...]]:
        for idea in self.ideas:
            yield idea.id, idea.tags

    def idea_rows(self) -> Iterator[tuple[Any, ...]]:
        now = self.now
        # Targets before the merged ideas that point at them (merged_into_id is a foreign key).
        for idea in sorted(self.ideas, key=lambda i: i.merged_into is not None):
            touched = bool(idea.steps) or idea.merged_into is not None
            yield (
                idea.id,
                self.people[idea.author].id,
                idea.title,
                idea.body,
                idea.tags,
                idea.visible_to,
                idea.status,
                idea.status_note,
                self.ideas[idea.merged_into].id if idea.merged_into is not None else None,
                1,
                idea.voters,
                idea.score,
                *[x for pair in idea.by_kind for x in pair],
                idea.recent_score,
                idea.comment_count,
                idea.created_at,
                now if touched else idea.created_at,
            )

    def revision_rows(self) -> Iterator[tuple[Any, ...]]:
        for idea in self.ideas:
            yield idea.id, 1, idea.title, idea.body, idea.tags, self.people[idea.author].id, idea.created_at

    def score_day_rows(self) -> Iterator[tuple[Any, ...]]:
        for (idea_index, day), delta in self.score_days.items():
            yield self.ideas[idea_index].id, day, delta

    def vote_rows(self) -> Iterator[tuple[Any, ...]]:
        people, ideas = self.people, self.ideas
        when: dict[float, datetime] = {}
        for idea_index, voter, weight, cast, vote in self._final_rows():
            if vote is None:
                at = _ts(cast)
                yield ideas[idea_index].id, people[voter].id, weight, None, people[voter].kind, at, at
            else:
                updated = when.get(vote.updated_at) or when.setdefault(vote.updated_at, _ts(vote.updated_at))
                yield (
                    ideas[idea_index].id,
                    people[voter].id,
                    vote.weight,
                    vote.previous_weight,
                    vote.kind,
                    _ts(vote.cast_at),
                    updated,
                )

    def idea_state_rows(self) -> Iterator[tuple[Any, ...]]:
        for idea in self.ideas:
            merged = self.ideas[idea.merged_into].id if idea.merged_into is not None else None
            yield idea.id, idea.status, idea.visible_to, self.people[idea.author].id, merged, self.now

    def idea_visibility_rows(self) -> Iterator[tuple[Any, ...]]:
        for idea in self.ideas:
            yield idea.id, idea.visible_to, self.people[idea.author].id, idea.status, self.now

    def comment_rows(self) -> Iterator[tuple[Any, ...]]:
        comments, ideas, people = self.comments, self.ideas, self.people
        for c in comments:  # parents first: they were generated first
            parent = comments[c.parent].id if c.parent is not None else None
            yield (c.id, ideas[c.idea].id, people[c.author].id, parent, c.body, c.official, False, 0, c.created_at)


# --- the bulk path ------------------------------------------------------------------------------
# COPY straight into the services' tables, not through their APIs: a bench shortcut for speed
# (a million votes in seconds); tests/bench/test_seed.py checks it leaves the API's state.
Rows = Callable[["Dataset"], Iterable[tuple[Any, ...]]]


class Copy(NamedTuple):
    table: str
    columns: list[str]
    rows: Rows


def copy(model: type[SQLModel], attributes: Sequence[Any], rows: Rows) -> Copy:
    """A COPY into a service's table, named by its SQLModel definition (a renamed column fails
    here, at import); `rows` yields the values in the order of `attributes`."""
    return Copy(str(model.__tablename__), [a.name for a in attributes], rows)


# The per-kind tally columns, in the order IdeaData.by_kind holds them.
TALLY = [
    getattr(Idea, name(kind))
    for kind in idea_rules.KINDS
    for name in (idea_rules.voters_column, idea_rules.weight_column)
]
TABLES: dict[str, list[Copy]] = {
    "stakeholders": [
        copy(
            Stakeholder,
            [
                Stakeholder.id,
                Stakeholder.email,
                Stakeholder.password_hash,
                Stakeholder.display_name,
                Stakeholder.kind,
                Stakeholder.role,
                Stakeholder.organization,
                Stakeholder.expertise,
                Stakeholder.created_at,
                Stakeholder.updated_at,
            ],
            lambda ds: ds.stakeholder_rows(ds.password_hash),
        ),
        copy(
            IdeaActivity,
            [IdeaActivity.stakeholder_id, IdeaActivity.idea_id, IdeaActivity.activity],
            Dataset.idea_activity_rows,
        ),
        copy(IdeaTags, [IdeaTags.idea_id, IdeaTags.tags], Dataset.idea_tags_rows),
    ],
    "ideas": [
        copy(
            Idea,
            [
                Idea.id,
                Idea.author_id,
                Idea.title,
                Idea.body,
                Idea.tags,
                Idea.visible_to,
                Idea.status,
                Idea.status_note,
                Idea.merged_into_id,
                Idea.version,
                Idea.voters,
                Idea.score,
                *TALLY,
                Idea.recent_score,
                Idea.comment_count,
                Idea.created_at,
                Idea.updated_at,
            ],
            Dataset.idea_rows,
        ),
        copy(
            IdeaRevision,
            [
                IdeaRevision.idea_id,
                IdeaRevision.version,
                IdeaRevision.title,
                IdeaRevision.body,
                IdeaRevision.tags,
                IdeaRevision.editor_id,
                IdeaRevision.edited_at,
            ],
            Dataset.revision_rows,
        ),
        copy(IdeaScoreDay, [IdeaScoreDay.idea_id, IdeaScoreDay.day, IdeaScoreDay.delta], Dataset.score_day_rows),
    ],
    "votes": [
        copy(
            IdeaState,
            [
                IdeaState.idea_id,
                IdeaState.status,
                IdeaState.visible_to,
                IdeaState.author_id,
                IdeaState.merged_into_id,
                IdeaState.updated_at,
            ],
            Dataset.idea_state_rows,
        ),
        copy(
            Vote,
            [
                Vote.idea_id,
                Vote.voter_id,
                Vote.weight,
                Vote.previous_weight,
                Vote.voter_kind,
                Vote.cast_at,
                Vote.updated_at,
            ],
            Dataset.vote_rows,
        ),
    ],
    "comments": [
        copy(
            IdeaVisibility,
            [
                IdeaVisibility.idea_id,
                IdeaVisibility.visible_to,
                IdeaVisibility.author_id,
                IdeaVisibility.status,
                IdeaVisibility.updated_at,
            ],
            Dataset.idea_visibility_rows,
        ),
        copy(
            Comment,
            [
                Comment.id,
                Comment.idea_id,
                Comment.author_id,
                Comment.parent_id,
                Comment.body,
                Comment.official,
                Comment.hidden,
                Comment.flag_count,
                Comment.created_at,
            ],
            Dataset.comment_rows,
        ),
    ],
}


def hash_password(password: str = PASSWORD) -> str:
    """One argon2 hash (the service's settings and code) shared by every seeded stakeholder."""
    from services.stakeholders.main import Settings
    from services.stakeholders.service import Passwords

    s = Settings()
    return Passwords(s.password_hash_time_cost, s.password_hash_memory_kib, s.password_hash_parallelism).hash_now(
        password
    )


@dataclass
class SeedReport:
    generate_seconds: float = 0.0
    load_seconds: float = 0.0
    vacuum_seconds: float = 0.0
    rows: dict[str, int] = field(default_factory=dict)

    @property
    def total_seconds(self) -> float:
        return self.generate_seconds + self.load_seconds + self.vacuum_seconds


def _counted(rows: Iterable[tuple[Any, ...]], counter: list[int]) -> Iterator[tuple[Any, ...]]:
    for row in rows:
        counter[0] += 1
        yield row


async def bulk_load(
    ds: Dataset, pg_url: str, report: SeedReport | None = None, *, vacuum: bool = True, db_prefix: str = ""
) -> SeedReport:
    """COPY the dataset into the four services' databases (`<pg_url>/<db_prefix><service>`),
    one transaction per database, then VACUUM ANALYZE the tables written."""
    report = report or SeedReport()
    if not ds.password_hash:
        ds.password_hash = hash_password()
    base = pg_url.rstrip("/")

    async def load(service: str) -> None:
        conn = await asyncpg.connect(f"{base}/{db_prefix}{service}")
        try:
            async with conn.transaction():
                for table, columns, rows in TABLES[service]:
                    counter = [0]
                    await conn.copy_records_to_table(table, records=_counted(rows(ds), counter), columns=columns)
                    report.rows[table] = counter[0]
        finally:
            await conn.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(load(service) for service in TABLES))
    report.load_seconds = time.perf_counter() - t0
    if vacuum:
        t0 = time.perf_counter()

        async def analyze(service: str) -> None:
            conn = await asyncpg.connect(f"{base}/{db_prefix}{service}")
            try:
                for table, _, _ in TABLES[service]:
                    await conn.execute(f'VACUUM (ANALYZE) "{table}"')
            finally:
                await conn.close()

        await asyncio.gather(*(analyze(service) for service in TABLES))
        report.vacuum_seconds = time.perf_counter() - t0
    return report


def generate(config: SeedConfig, now: datetime | None = None, report: SeedReport | None = None) -> Dataset:
    t0 = time.perf_counter()
    ds = Dataset.generate(config, now)
    ds.password_hash = hash_password()
    if report is not None:
        report.generate_seconds = time.perf_counter() - t0
    return ds


# --- the same history through the public API (the bulk path's reference) -------------------------
REGISTER = "mutation($input: RegisterInput!) { register(input: $input) { token stakeholder { id } } }"
LOGIN = "mutation($email: String!, $password: String!) { login(email: $email, password: $password) { token } }"
GRANT = "mutation($id: ID!, $role: Role!) { grantRole(stakeholderId: $id, role: $role) { id role } }"
PROPOSE = "mutation($input: ProposeIdeaInput!) { proposeIdea(input: $input) { id } }"
CAST = "mutation($id: ID!, $w: Int) { castVote(ideaId: $id, weight: $w) { weight } }"
COMMENT = (
    "mutation($id: ID!, $body: String!, $parent: ID) { addComment(ideaId: $id, body: $body, parentId: $parent) { id } }"
)
STATUS = "mutation($id: ID!, $s: IdeaStatus!, $note: String) { setIdeaStatus(id: $id, status: $s, note: $note) { id } }"
MERGE = "mutation($s: ID!, $t: ID!) { mergeIdeas(sourceId: $s, targetId: $t) { id } }"


def replay_through_api(ds: Dataset, graphql_url: str, admin_email: str, admin_password: str) -> None:
    """Apply the dataset's history through the public GraphQL API, in the module's order. Small
    datasets only (one request at a time; the gateway's rate limits apply)."""
    import httpx

    client = httpx.Client(timeout=30)

    def call(query: str, token: str | None = None, *, settle: bool = False, **variables: Any) -> dict[str, Any]:
        """One mutation; RATE_LIMITED waits and retries. With `settle`, NOT_FOUND is retried
        (bounded) too: the votes and comments services learn of a new idea asynchronously."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            answer = client.post(graphql_url, json={"query": query, "variables": variables}, headers=headers).json()
            errors = answer.get("errors")
            code = errors[0].get("extensions", {}).get("code") if errors else None
            if code == "RATE_LIMITED":
                time.sleep(float(errors[0]["extensions"].get("retry_after", 1)))
                continue
            if code == "NOT_FOUND" and settle:
                time.sleep(0.05)
                continue
            if errors:
                raise AssertionError(f"{query.split('{')[1].split('(')[0].strip()} failed: {errors}")
            data: dict[str, Any] = answer["data"]
            return data
        raise AssertionError(f"gave up after 60 s: {query}")

    try:
        admin = call(LOGIN, email=admin_email, password=admin_password)["login"]["token"]
        tokens: list[str] = []
        ids: list[str] = []
        for p in ds.people:
            data = call(
                REGISTER,
                input={
                    "email": p.email,
                    "password": PASSWORD,
                    "displayName": p.display_name,
                    "kind": p.kind,
                    "organization": p.organization,
                    "expertise": p.expertise,
                },
            )
            tokens.append(data["register"]["token"])
            ids.append(data["register"]["stakeholder"]["id"])
        for i, p in enumerate(ds.people):
            if p.role != "MEMBER":
                call(GRANT, admin, id=ids[i], role=p.role)
                tokens[i] = call(LOGIN, email=p.email, password=PASSWORD)["login"]["token"]  # a token with the role
        idea_ids = []
        for idea in ds.ideas:
            data = call(
                PROPOSE,
                tokens[idea.author],
                input={"title": idea.title, "body": idea.body, "tags": idea.tags, "visibleTo": idea.visible_to},
            )
            idea_ids.append(data["proposeIdea"]["id"])
        for idea_index, voter, weight in zip(ds.vote_idea, ds.vote_voter, ds.vote_weight, strict=True):
            call(CAST, tokens[voter], settle=True, id=idea_ids[idea_index], w=weight)
        comment_ids: list[str] = []
        for c in ds.comments:
            parent = comment_ids[c.parent] if c.parent is not None else None
            data = call(COMMENT, tokens[c.author], settle=True, id=idea_ids[c.idea], body=c.body, parent=parent)
            comment_ids.append(data["addComment"]["id"])
        for i, idea in enumerate(ds.ideas):
            for step in idea.steps:
                call(STATUS, admin, id=idea_ids[i], s=step, note=note_for(step))
        for source, target in ds.merges:
            call(MERGE, admin, s=idea_ids[source], t=idea_ids[target])
    finally:
        client.close()
