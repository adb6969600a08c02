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
`title`, `status` and `detail`; no body contains a Python traceback; and every check
Schemathesis has passes (status code, content type, headers and body as documented, negative
data rejected, positive data accepted unless a rule the schema cannot state refuses it: see
RULES_BEYOND_THE_SCHEMA).  A second test chains operations by the links Schemathesis infers
from the document (stateful), with the same checks.  Violations are collected
(one example per operation, status and kind of failure) and reported together, with the request
and any traceback the hub logged.
"""

from __future__ import annotations

import json
import logging
import os
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.core import NotSet
from schemathesis.core.failures import AcceptedNegativeData, Failure, FailureGroup
from schemathesis.generation.modes import GenerationMode
from schemathesis.openapi.checks import RejectedPositiveData

from tests.helpers import Network, Partner

SCHEMA_PATH = "/api/v1/openapi.json"
# Requests per run and backend, shared out among the operations (at least 4 examples per
# operation and mode), so the suite's time stays bounded as the API grows: about a minute a
# backend on a quiet machine.  HUB_FUZZ_EXAMPLES=200 (say) sets the examples per operation
# and mode instead, to search deeper.
REQUEST_BUDGET = 700


def examples_per_operation(operations: int) -> int:
    if os.environ.get("HUB_FUZZ_EXAMPLES"):
        return int(os.environ["HUB_FUZZ_EXAMPLES"])
    return max(4, REQUEST_BUDGET // (2 * operations))
PROBLEM_FIELDS = ("type", "title", "status", "detail")

# Values of the headers the document declares (Idempotency-Key, If-Match), valid by it, aimed
# at what the hub keeps: keys used twice (replays, or reuse with another body) and versions a
# leg may have.  Schemathesis generates others itself, valid and invalid.
IF_MATCH = st.one_of(
    st.none(), st.just("*"), st.integers(0, 8).map(lambda v: f'"{v}"'),
    st.integers(0, 10**18 - 1).map(lambda v: f'W/"{v}"'),
)
IDEMPOTENCY_KEY = st.one_of(st.none(), st.sampled_from(["fuzz-key-1", "fuzz-key-2"]))


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


@pytest.fixture
def world(app: Flask) -> Iterator[World]:
    """The rows to aim at; afterwards, the webhook endpoints the fuzzing registered are
    deleted, or later tests' deliveries would queue behind theirs (to made-up addresses)."""
    built = build_world(app)
    yield built
    endpoints = built.caller.get("/api/v1/webhook-endpoints?limit=500").get_json()["items"]
    for endpoint in endpoints:
        built.caller.call("DELETE", f"/api/v1/webhook-endpoints/{endpoint['id']}")


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


# Rules the hub enforces that a JSON schema cannot state (they depend on other rows, on other
# fields or on the network): a request the document calls valid may break one and is then
# rightly refused, by a problem naming the rule.  Anything else refused is a failure.
RULES_BEYOND_THE_SCHEMA = {
    # problem types
    "invalid-cursor": "a cursor is made by its own list (opaque to clients)",
    "stale-version": "If-Match names a version the leg no longer has",
    "idempotency-key-reused": "an Idempotency-Key already used with another body",
    "participant-erased": "a participant whose data an earlier request of the walk erased",
    # fields of a validation problem (422)
    "participant_id": "a participant the caller may refer",
    "participant_ids": "participants of the caller's organization",
    "organization_id": "another organization than the caller's (an outdated entry report)",
    "item": "an item of this leg's checklist, which depends on its pathway",
    "share_details": "only with the referral_sharing purpose",
    "to_organization_id": "another organization of the directory, not a coordination body",
    "organization_ids": "organizations of the directory",
    "forwarded_from": "a leg of the same participant",
    "opportunity_id": "an open opportunity published by the leg's receiver",
    "query.to": "a period of at most five years, not before `from`",
    "event_types": "a pattern matching at least one event type",
    "url": "an https URL resolving to a public address",
    "expires_at": "a date in the future",
    "stage": "a stage for entrepreneurship referrals only",
    "birth_year": "a plausible year of birth",
    "website": "a URL with a host name that marshmallow's URL validator accepts",
}


def beyond_the_schema(response: Any) -> bool:
    """Whether a refusal names only rules of RULES_BEYOND_THE_SCHEMA."""
    try:
        problem = json.loads(response.content)
    except ValueError:
        return False
    if not isinstance(problem, dict):
        return False
    if str(problem.get("type", "")).rsplit("/", 1)[-1] in RULES_BEYOND_THE_SCHEMA:
        return True
    errors = problem.get("errors")
    return (response.status_code == 422 and isinstance(errors, dict) and bool(errors)
            and set(errors) <= set(RULES_BEYOND_THE_SCHEMA))


def conformance(case: Any, response: Any, *, ids_replaced: bool = False,
                **kwargs: Any) -> list[tuple[str, str]]:
    """Schemathesis' own checks of the answer against the document (every check it has, all
    enabled by default): status code, content type, headers and body schema, negative data
    rejected, positive data accepted, ignored auth, use after free, ...

    `ids_replaced`: the request had a generated id replaced by a real one, which may have
    undone the very mutation that made a negative case invalid (a boolean where an id was
    expected, say): such a request accepted is not "negative data accepted"."""
    try:
        case.validate_response(response, **kwargs)
    except FailureGroup as group:
        failures = list(group.exceptions)
    except Failure as failure:
        failures = [failure]
    else:
        return []
    return [(f"{type(f).__name__}: {f.title}", str(f)) for f in failures
            if not (isinstance(f, RejectedPositiveData) and beyond_the_schema(response))
            and not (isinstance(f, AcceptedNegativeData) and ids_replaced)]


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
        ids_replaced = False
        for name in list(case.path_parameters or {}):
            if name in ids and data.draw(st.booleans(), label=f"real {name}"):
                case.path_parameters[name] = real_id(data, name)
                ids_replaced = True
        if isinstance(case.body, dict):
            for name in [n for n in case.body if n in ids]:
                if data.draw(st.booleans(), label=f"real body {name}"):
                    case.body[name] = real_id(data, name)
                    ids_replaced = True
        headers = dict(token_headers)
        declared = {p.name for p in case.operation.headers}
        for name, values in (("If-Match", IF_MATCH), ("Idempotency-Key", IDEMPOTENCY_KEY)):
            if name in declared and name not in (case.headers or {}):
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
        for kind, message in conformance(case, response, ids_replaced=ids_replaced,
                                         headers=headers):
            findings.add(case.operation.label, kind, describe(
                case, headers, response.status_code,
                response.content.decode("utf-8", errors="replace"), [message]))
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
def test_any_request_gets_a_non_5xx_answer_and_errors_are_problems(app: Flask,
                                                                   world: World) -> None:
    schema = schemathesis.openapi.from_wsgi(SCHEMA_PATH, app)
    findings = Findings()
    run = exercise(world, findings)
    labels = []
    operations = [result.ok() for result in schema.get_all_operations()]
    examples = examples_per_operation(len(operations))
    for operation in operations:
        labels.append(operation.label)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(max_examples=examples, deadline=None, database=None,
                      derandomize=True, phases=(Phase.explicit, Phase.generate),
                      suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode), data=st.data())
            def fuzz(case: Any, data: st.DataObject) -> None:
                run(case, data)

            try:
                fuzz()
            except Unsatisfiable:
                # An operation without parameters nor body has nothing to make invalid.
                if mode is GenerationMode.POSITIVE or (
                        list(operation.iter_parameters()) or operation.body):
                    raise

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


# Scenarios per run of the state machine, and steps in each; HUB_FUZZ_SCENARIOS deepens it.
SCENARIOS = int(os.environ.get("HUB_FUZZ_SCENARIOS", "20"))


@pytest.mark.timeout(600)
def test_chained_requests_follow_the_documents_links_without_failure(app: Flask,
                                                                     world: World) -> None:
    """Stateful: Schemathesis chains operations by the links it infers from the document (the
    id a POST answers is the next GET's or transition's path parameter) and checks every
    answer, with the checks that need a history (use after free, resource availability)."""
    schema = schemathesis.openapi.from_wsgi(SCHEMA_PATH, app)
    findings = Findings()
    token_headers = {"Authorization": f"Bearer {world.caller.token}"}
    workflow = schema.as_state_machine()
    assert workflow.bundles, "no links: the document's operations do not chain"

    class HubWorkflow(workflow):  # type: ignore[misc, valid-type]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"headers": dict(token_headers)}

        def validate_response(self, response: Any, case: Any,
                              additional_checks: Any = None, **kwargs: Any) -> None:
            findings.calls += 1
            findings.statuses[response.status_code] = (
                findings.statuses.get(response.status_code, 0) + 1)
            headers = kwargs.get("headers") or {}
            for kind, message in conformance(case, response, headers=headers,
                                             transport_kwargs=kwargs or None,
                                             recorder=self.recorder):
                findings.add(case.operation.label, kind, describe(
                    case, headers, response.status_code,
                    response.content.decode("utf-8", errors="replace"), [message]))
            content_type = (response.headers.get("content-type") or [""])[0]
            for kind in violations(response.status_code, content_type, response.content):
                findings.add(case.operation.label, kind, describe(
                    case, headers, response.status_code,
                    response.content.decode("utf-8", errors="replace"), []))

    HubWorkflow.run(settings=settings(
        max_examples=SCENARIOS, stateful_step_count=6, deadline=None, database=None,
        derandomize=True, suppress_health_check=list(HealthCheck)))
    assert findings.calls > SCENARIOS
    summary = ", ".join(f"{status}: {count}" for status, count in sorted(findings.statuses.items()))
    assert not findings.examples, (
        f"{len(findings.examples)} violation(s) in {findings.calls} requests "
        f"(statuses {summary}):\n\n{findings}"
    )
