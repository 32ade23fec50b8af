"""RELIABILITY.md, written from the last `make reliability` run of this suite.

Tests call `record(section, key, row)` with the figures they measured (before asserting, so a
failing run is reported as failing); at the end of the session `render()` rewrites the document
when RELIABILITY_REPORT=1 (what `make reliability` sets; `make test` writes nothing).
The figures are also kept, as JSON, in a comment at the end of the document: a partial run (one
test, one module) updates its own rows and keeps the others, each row stamped with its run."""

from __future__ import annotations

import json
import platform
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT = ROOT / "RELIABILITY.md"
MARKER = "<!-- resilience-results"

# section -> (title, columns); a row is a dict over these columns (extra keys are kept in the JSON).
SECTIONS: dict[str, tuple[str, list[str]]] = {
    "faults": (
        "1. Fault injection under load",
        [
            "scenario",
            "operations sent",
            "acknowledged",
            "errors by code",
            "lost",
            "duplicated",
            "5xx",
            "hangs",
            "wrong answers",
            "unacknowledged but applied",
            "time to consistent (s)",
            "result",
        ],
    ),
    "redelivery": (
        "2. Redelivery, duplication, ordering",
        ["case", "inputs tried", "events applied", "redeliveries (no-ops)", "invariant checks", "result"],
    ),
    "authz": (
        "3. Authorisation matrix (OWASP API1 / API3 / API5) and tokens",
        ["part", "inputs tried", "allowed as expected", "denied as expected", "wrong", "known bugs (xfail)", "result"],
    ),
    "abuse": (
        "4. Abuse: rate limits, vote stuffing, query floods, hostile input",
        ["check", "inputs tried", "outcome", "state unchanged", "5xx", "result"],
    ),
    "fuzz": (
        "5. Fuzzing (schemathesis)",
        [
            "target",
            "operations",
            "inputs tried",
            "answers by status",
            "5xx",
            "nonconforming",
            "known bugs (xfail)",
            "result",
        ],
    ),
}

METHOD = """\
Everything below is measured by `tests/resilience/` (asserted on every `make test`, written here
by `make reliability`), on real servers the tests start themselves on loopback (embedded
PostgreSQL, nats-server with JetStream and `sync_interval: always`, the four services and the
gateway as separate processes through `devstack.cluster.Cluster`, `ENVIRONMENT=production`).
`make reliability` rewrites the tables at the end of its run (the JSON at the end of this file
keeps the figures; a partial run, e.g. `make reliability PYTEST_ARGS="-k faults"`, updates only
its rows).

- **Fault injection** (`test_faults.py`): one cluster; 50 stakeholders of the four kinds and 20
  public ideas; per scenario a stream of concurrent `castVote` / `withdrawVote` / `addComment`
  calls (plus a few `idea` reads) through the gateway, each stakeholder's calls sent one after
  the other, every call bounded by a 15 s client timeout (a timeout counts as a hang, a failure).
  After a quarter of the stream one part is broken with `kill -9` (nats-server, the ideas
  service, the votes service) or PostgreSQL is stopped in `immediate` mode (a crash: no
  checkpoint, recovery at start), kept down ~3 s while the stream goes on, then restarted.
  Retryable answers (`UNAVAILABLE`, HTTP 503) are retried with a back-off, as a client would.
  Once the stream ends the test polls (bounded) until every outbox row is published, every
  JetStream durable consumer has `num_pending == 0` and `num_ack_pending == 0`, and every
  projection equals its source: ideas' voters / score / per-kind tallies / comment count /
  recent score against the aggregates of `votes.vote`, `comments.comment` and the trending day
  buckets; the votes and comments services' idea projections against `ideas.idea`.
  The client keeps a ledger: the expected final vote per (idea, stakeholder) folds each
  stakeholder's calls in order (an acknowledged call fixes the value; a failed call may or may
  not have applied, so it adds a candidate); every acknowledged comment must exist exactly once
  (each attempt carries a unique marker). *Lost* = the database holds a value the ledger rules
  out; *duplicated* = a marker stored twice or a second row for one (idea, stakeholder);
  *wrong answers* = an acknowledged `withdrawVote` whose true/false contradicts the ledger.
  *Time to consistent* counts from the end of the stream; after a nats-server crash it includes
  JetStream's redelivery, after `ack_wait` (10 s), of messages delivered but not acked when the
  server died (the inbox makes those redeliveries no-ops).
- **Redelivery** (`test_redelivery.py`): the ideas and votes services in-process on their own
  databases, their background relay and consumers stopped, events taken from their outboxes and
  applied through `ConsumerRunner.apply` (inbox row + effect in one transaction) by hand: the
  same event twice, events out of order, a merge delivered twice; and a hypothesis
  `RuleBasedStateMachine` that casts, changes, withdraws, merges and delivers / redelivers
  events in any order, checking after every step that projection + undelivered deltas ==
  source aggregate, that redeliveries change nothing, and, once drained, projection == source.
- **Authorisation** (`test_authz.py`): one table in the test module gives, for every mutation
  and query, who may do it; it is expanded over every role (anonymous, MEMBER, MODERATOR,
  PRODUCT_TEAM, ADMIN, the idea's author, a read-only API key) x every stakeholder kind x a
  public and a SUPPLIER-only idea, and each cell is asserted (allowed, or refused with the
  contract's code; invisible objects are NOT_FOUND / null, never FORBIDDEN). Every answer is
  scanned for e-mail addresses, password hashes and hidden comment bodies. Tampered, expired,
  `alg: none`, HS256-signed-with-the-public-key, foreign-key and revoked credentials must all be
  UNAUTHENTICATED.
- **Abuse** (`test_abuse.py`): a second gateway with low limits (`MUTATION_BURST`,
  `ANONYMOUS_MUTATION_BURST`) on the same services; login failure lock-out; one account logged
  in 20 times votes once per token; depth / alias / cost / token / batch floods; bodies over the
  cap; hostile titles and bodies (HTML, script, SQL, control characters, bidi overrides, NUL,
  invalid UTF-8 bytes, 1 MB strings) refused with a code or stored as inert text and returned
  unchanged.
- **Fuzzing** (`test_fuzz.py`): schemathesis generates requests from each service's
  `/openapi.json` and from the gateway's GraphQL schema (bounded, derandomized), with a valid
  bearer token (an ADMIN's: every path reachable), 30 examples per operation; for the services
  the CLI's examples, coverage, fuzzing and stateful phases. Checks: no 5xx, documented status
  codes and content types, response bodies valid against the documented schemas, schema-violating
  requests refused, unauthenticated calls refused, `Allow` on 405; for GraphQL: every error
  carries a contract code, never INTERNAL or UNAVAILABLE, no stack trace or SQL.

A row's **result** is what the test asserted; known defects in code this suite does not own are
strict `xfail` tests (they fail once fixed, so the mark is removed) and are listed below.
"""


def _load_previous() -> dict[str, Any]:
    if not DOCUMENT.exists():
        return {}
    text = DOCUMENT.read_text()
    match = re.search(re.escape(MARKER) + r"\s*(\{.*\})\s*-->", text, re.S)
    if not match:
        return {}
    try:
        data: dict[str, Any] = json.loads(match.group(1))
        return data
    except ValueError:
        return {}


class Results:
    def __init__(self) -> None:
        self.sections: dict[str, dict[str, dict[str, Any]]] = {}
        self.bugs: dict[str, dict[str, str]] = {}
        self.run_at = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        self._seq = 0

    def record(self, section: str, key: str, row: dict[str, Any]) -> None:
        assert section in SECTIONS, section
        self._seq += 1
        self.sections.setdefault(section, {})[key] = {**row, "run": self.run_at, "seq": self._seq}

    def bug(self, key: str, where: str, what: str, status: str) -> None:
        """A defect found by the suite: `status` is "fixed in ..." or "xfail (open)"."""
        self.bugs[key] = {"where": where, "what": what, "status": status, "run": self.run_at}

    @property
    def empty(self) -> bool:
        return not self.sections and not self.bugs

    def render(self) -> None:
        previous = _load_previous()
        sections: dict[str, dict[str, dict[str, Any]]] = previous.get("sections", {})
        for name, rows in self.sections.items():
            sections.setdefault(name, {}).update(rows)
        bugs: dict[str, dict[str, str]] = previous.get("bugs", {})
        bugs.update(self.bugs)
        DOCUMENT.write_text(_document(sections, bugs, self.run_at))


def _cell(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items()) or "-"
    if isinstance(value, float):
        return f"{value:.1f}"
    text = str(value) if value is not None else "-"
    return text.replace("|", "\\|").replace("\n", " ")


def _commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        return out.stdout.strip() or "?"
    except OSError:
        return "?"


def _document(sections: dict[str, dict[str, dict[str, Any]]], bugs: dict[str, dict[str, str]], run_at: str) -> str:
    lines = [
        "# Reliability and security",
        "",
        f"_Written by the resilience tests (`tests/resilience/`) through `make reliability`. Last run {run_at}, "
        f"on commit {_commit()} (plus the working tree), {platform.system()} {platform.machine()}, "
        f"Python {platform.python_version()}. Rows carry the run that produced them._",
        "",
        "## Method",
        "",
        METHOD,
    ]
    for name, (title, columns) in SECTIONS.items():
        rows = sections.get(name, {})
        lines += [f"## {title}", ""]
        if not rows:
            lines += ["_Not run yet._", ""]
            continue
        lines.append("| " + " | ".join([*columns, "run"]) + " |")
        lines.append("|" + "---|" * (len(columns) + 1))
        ordered = sorted(rows.values(), key=lambda row: (row.get("run", ""), row.get("seq", 0)))
        for row in ordered:
            lines.append("| " + " | ".join(_cell(row.get(c)) for c in [*columns, "run"]) + " |")
        notes = [f"- **{_cell(row.get(columns[0]))}**: {row['notes']}" for row in ordered if row.get("notes")]
        lines += ["", *notes, ""] if notes else [""]
    lines += ["## Bugs found by this suite", ""]
    if bugs:
        lines += ["| id | where | what | status | run |", "|---|---|---|---|---|"]
        for key, bug in sorted(bugs.items()):
            lines.append(
                f"| {key} | {_cell(bug['where'])} | {_cell(bug['what'])} | {_cell(bug['status'])} | {bug['run']} |"
            )
    else:
        lines.append("_None._")
    lines += ["", f"{MARKER}", _json({"sections": sections, "bugs": bugs}), "-->", ""]
    return "\n".join(lines)


def _json(data: Any) -> str:
    # Inside an HTML comment: "-->" must not appear (escaped as JSON allows).
    return json.dumps(data, indent=1, sort_keys=True).replace("-->", "--\\u003e")


RESULTS = Results()
