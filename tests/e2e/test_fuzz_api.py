"""Property-based fuzzing of the whole partner API: whatever a client sends, the hub never answers
5xx, and every error it answers is RFC 9457 problem+json.

The operations come from the hub's own OpenAPI document (/api/v1/openapi.json); Schemathesis
generates requests for each of them, both valid (positive) and invalid (negative: wrong types,
missing fields, bodies that break the schema, odd path and query values), and sends them to the
WSGI app in-process.  Every request carries a valid Bearer token of an organization holding all
partner scopes, so it gets past authentication into validation and the use cases.  Some of the
time the path and body ids are replaced by real ones (the caller's participants, legs it
received or sent in various states, legs it may not see, real organizations), and some requests
carry `If-Match` and `Idempotency-Key` headers, so lifecycle transitions, visibility, versions
and idempotency checks run, not only 404s and 422s.

For every response: status < 500; an error (>= 400) is `application/problem+json` with `type`,
`title`, `status` and `detail`; no body contains a Python traceback.  Violations are collected
(one example per operation, status and kind of failure) and reported together, with the request
and any traceback the hub logged.
"""

from __future__ import annotations

import json
import logging
import os
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.core import NotSet
from schemathesis.generation.modes import GenerationMode

from tests.helpers import Network, Partner

SCHEMA_PATH = "/api/v1/openapi.json"
# Examples per operation and generation mode: 17 operations x 2 modes, bounded so that the
# suite stays within its time on a small machine for both SQLite and PostgreSQL;
# HUB_FUZZ_EXAMPLES=200 (say) searches deeper.
EXAMPLES = int(os.environ.get("HUB_FUZZ_EXAMPLES", "15"))
MAX_EXAMPLES = {GenerationMode.POSITIVE: EXAMPLES, GenerationMode.NEGATIVE: EXAMPLES}
PROBLEM_FIELDS = ("type", "title", "status", "detail")

# Header values a client may send: latin-1 text without control characters (what WSGI can
# carry), without the leading whitespace HTTP parsers strip (and `requests` refuses).
HEADER_TEXT = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
    max_size=40,
).map(str.lstrip)
IF_MATCH = st.one_of(
    st.none(), st.just("*"), st.integers(-1, 8).map(lambda v: f'"{v}"'),
    st.integers(0, 2**70).map(lambda v: f'W/"{v}"'), HEADER_TEXT,
)
IDEMPOTENCY_KEY = st.one_of(st.none(), st.sampled_from(["fuzz-key-1", "fuzz-key-2"]), HEADER_TEXT)


@dataclass
class World:
    """Real rows the fuzzer may aim at, seen from the caller's organization."""

    caller: Partner
    peer: Partner
    stranger: Partner
    organizations: list[str]
    participants: list[str]
    referrals: list[str]
    new_leg_states: dict[str, list[str]] = field(default_factory=lambda: {
        "sent": [],
        "acknowledged": ["acknowledge"],
        "accepted": ["acknowledge", "accept"],
        "in_progress": ["acknowledge", "accept", "start"],
    })

    def fresh_leg(self, state: str, inbound: bool) -> str:
        """A new leg between peer and caller, moved to `state` by its receiver."""
        sender, receiver = (self.peer, self.caller) if inbound else (self.caller, self.peer)
        leg = sender.refer(receiver)
        for action in self.new_leg_states[state]:
            response = receiver.act(leg["id"], action)
            assert response.status_code == 200, response.get_data(as_text=True)
        return leg["id"]


def build_world(app: Flask) -> World:
    network = Network(app)
    caller = network.partner()
    peer = network.partner(kind="regional_partner", region="01")
    stranger = network.partner(kind="employer", region="03")
    own = caller.register_participant()["id"]
    inbound = peer.refer(caller)
    outbound = caller.refer(peer, participant_id=own)
    invisible = stranger.refer(peer)
    return World(
        caller=caller, peer=peer, stranger=stranger,
        organizations=[caller.organization_id, peer.organization_id, stranger.organization_id],
        participants=[own, inbound["participant"]["id"], invisible["participant"]["id"]],
        referrals=[inbound["id"], outbound["id"], invisible["id"]],
    )


class LogCapture(logging.Handler):
    """Errors the hub logs while answering one request (the unexpected-error handler logs the
    traceback it keeps out of the answer)."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.lines: list[str] = []
        self.causes: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        line = f"{record.levelname} {record.name}: {record.getMessage()}"
        if record.exc_info:
            line += "\n" + "".join(traceback.format_exception(*record.exc_info))
            error = record.exc_info[1]
            self.causes.append(f"{type(error).__name__}: {(str(error).splitlines() or [''])[0]}")
        self.lines.append(line)


def violations(status: int, content_type: str, body: bytes) -> list[str]:
    """What is wrong with one answer, per the contract of this module."""
    found = []
    text = body.decode("utf-8", errors="replace")
    if status >= 500:
        found.append(f"server error {status}")
    if "Traceback" in text:
        found.append("body contains a traceback")
    if status >= 400:
        if content_type.split(";")[0].strip().lower() != "application/problem+json":
            found.append(f"error answered as {content_type or 'no content type'!r}")
        try:
            problem = json.loads(text)
        except ValueError:
            found.append("error body is not JSON")
        else:
            missing = [name for name in PROBLEM_FIELDS
                       if not isinstance(problem, dict) or name not in problem]
            if missing:
                found.append(f"problem lacks {', '.join(missing)}")
            elif problem["status"] != status:
                found.append(f"problem status {problem['status']!r} is not {status}")
    return found


@dataclass
class Findings:
    """Violations, one example per (operation, kind of failure)."""

    examples: dict[tuple[str, str], str] = field(default_factory=dict)
    calls: int = 0
    statuses: dict[int, int] = field(default_factory=dict)

    def add(self, label: str, kind: str, report: str) -> None:
        self.examples.setdefault((label, kind), report)

    def __str__(self) -> str:
        return "\n\n".join(f"### {label}: {kind}\n{report}"
                           for (label, kind), report in self.examples.items())


def describe(case: Any, headers: dict[str, str], status: int | str, body: str,
             logs: list[str]) -> str:
    """The request and answer of one violation, enough to replay it by hand."""
    sent_headers = {**(case.headers or {}), **headers}
    sent_headers.pop("Authorization", None)  # a valid Bearer token of the caller
    lines = [
        f"request: {case.method.upper()} {case.formatted_path}",
        f"query: {case.query or {}!r}",
        f"headers (besides Authorization: Bearer <valid token>): {sent_headers!r}",
        f"media type: {case.media_type!r}",
        f"body: {'(none)' if isinstance(case.body, NotSet) else repr(case.body)}",
        f"status: {status}",
        f"response body: {body[:2000]}",
    ]
    if logs:
        lines.append("hub logs:\n" + "\n".join(logs))
    return "\n".join(lines)


def exercise(world: World, findings: Findings) -> Callable[..., None]:
    """The property, for one request: built once, run for every generated case."""
    caller = world.caller
    token_headers = {"Authorization": f"Bearer {caller.token}"}
    ids = {
        "organization_id": world.organizations,
        "to_organization_id": world.organizations,
        "participant_id": world.participants,
        "referral_id": world.referrals,
        "forwarded_from": world.referrals,
    }

    def real_id(data: st.DataObject, name: str) -> str:
        if name == "referral_id" and data.draw(st.booleans(), label="fresh leg"):
            state = data.draw(st.sampled_from(sorted(world.new_leg_states)), label="leg state")
            leg = world.fresh_leg(state, inbound=data.draw(st.booleans(), label="inbound"))
            world.referrals.append(leg)
            return leg
        return data.draw(st.sampled_from(ids[name]), label=name)

    def run(case: Any, data: st.DataObject) -> None:
        # Aim at real rows some of the time, so use cases run past "not found".
        for name in list(case.path_parameters or {}):
            if name in ids and data.draw(st.booleans(), label=f"real {name}"):
                case.path_parameters[name] = real_id(data, name)
        if isinstance(case.body, dict):
            for name in [n for n in case.body if n in ids]:
                if data.draw(st.booleans(), label=f"real body {name}"):
                    case.body[name] = real_id(data, name)
        headers = dict(token_headers)
        if case.method.upper() == "POST":
            for name, values in (("If-Match", IF_MATCH), ("Idempotency-Key", IDEMPOTENCY_KEY)):
                value = data.draw(values, label=name)
                if value is not None:
                    headers[name] = value

        capture = LogCapture()
        root = logging.getLogger()
        root.addHandler(capture)
        try:
            response = case.call(headers=headers)
        except Exception as error:  # an exception escaping the app is a 500 for a real server
            findings.add(case.operation.label, f"exception {type(error).__name__}", describe(
                case, headers, "(exception escaped the app)", "",
                capture.lines + ["".join(traceback.format_exception(error))]))
            return
        finally:
            root.removeHandler(capture)
        findings.calls += 1
        findings.statuses[response.status_code] = findings.statuses.get(response.status_code, 0) + 1
        content_type = (response.headers.get("content-type") or [""])[0]
        for kind in violations(response.status_code, content_type, response.content):
            if response.status_code >= 500 and capture.causes:  # one example per distinct cause
                kind += f" ({capture.causes[-1]})"
            findings.add(case.operation.label, kind, describe(
                case, headers, response.status_code,
                response.content.decode("utf-8", errors="replace"), capture.lines))

    return run


# About 4 s per operation on a quiet machine, several times that on a loaded one: more than
# the suite's default 120 s, and more with each new operation.
@pytest.mark.timeout(600)
def test_any_request_gets_a_non_5xx_answer_and_errors_are_problems(app: Flask) -> None:
    world = build_world(app)
    schema = schemathesis.openapi.from_wsgi(SCHEMA_PATH, app)
    findings = Findings()
    run = exercise(world, findings)
    labels = []
    for result in schema.get_all_operations():
        operation = result.ok()
        labels.append(operation.label)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(max_examples=MAX_EXAMPLES[mode], deadline=None, database=None,
                      derandomize=True, phases=(Phase.explicit, Phase.generate),
                      suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode), data=st.data())
            def fuzz(case: Any, data: st.DataObject) -> None:
                run(case, data)

            fuzz()

    assert len(labels) >= 17, labels
    assert findings.calls > 0
    summary = ", ".join(f"{status}: {count}" for status, count in sorted(findings.statuses.items()))
    assert not findings.examples, (
        f"{len(findings.examples)} violation(s) in {findings.calls} requests "
        f"(statuses {summary}):\n\n{findings}"
    )


@pytest.fixture(autouse=True)
def _quiet_access_log() -> Any:
    """The access log line of each of the thousand requests is noise in a failure report."""
    access = logging.getLogger("hub.access")
    level = access.level
    access.setLevel(logging.WARNING)
    yield
    access.setLevel(level)
