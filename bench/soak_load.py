"""The soak's load generator: partner systems of 20 organizations doing what they do all day.

Each thread plays a few counsellors: it registers participants (with a network-wide
`referral_sharing` consent), sends legs to other organizations, answers the legs sent to them
as their receivers (acknowledge, accept or decline, start, complete, forward), cancels some,
withdraws some consents, reads legs and polls the event feed.  A thread only acts on its own
participants' legs, so its requests never race each other: a 409 can only come from the hub
acting on its own (the scheduler expiring a leg, a consent withdrawal cancelling it).

Requests go to one web process and, when its connection fails (the chaos loop killed it), to
the other, like a load balancer; creations carry an `Idempotency-Key`, so a retry is safe, and
a transition retried after a lost answer is recognised by reading the leg.
"""

from __future__ import annotations

import itertools
import math
import random
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import httpx

PATHWAYS = ("employment", "settlement", "training", "entrepreneurship", "other")
OUTCOMES = ("employed", "in_training", "settled", "service_delivered", "no_show")
DECLINE_REASONS = ("not_eligible", "no_capacity", "out_of_region", "other")
# (action, weight) of one step of a thread.
MIX = (("advance", 46), ("send", 18), ("register", 7), ("cancel", 4), ("withdraw", 2),
       ("poll", 15), ("read", 8))
SLOW_ANSWER = 0.25  # how often a slow receiver (deadline policy of 0 days) answers at all


@dataclass
class Organization:
    index: int
    id: str
    client_id: str
    client_secret: str
    headers: dict[str, str] = field(default_factory=dict)
    slow: bool = False  # acknowledges late: its legs go past their deadline and expire


@dataclass
class Leg:
    id: str
    sender: int
    receiver: int
    status: str = "sent"


@dataclass
class Person:
    id: str
    organization: int
    consent_id: str
    withdrawn: bool = False
    legs: list[Leg] = field(default_factory=list)


@dataclass
class Tally:
    """What the load generator saw: latencies by step, answers by class, samples of errors."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    requests: int = 0
    server_errors: int = 0  # 5xx answers
    transport_errors: int = 0  # connection refused or cut: a web process was killed
    unexpected: int = 0  # an answer the request did not call for
    hub_conflicts: int = 0  # 409 because the hub changed the leg itself (expiry, consent)
    recovered_retries: int = 0  # a retried transition found already applied
    samples: list[str] = field(default_factory=list)

    def note(self, sample: str) -> None:
        if len(self.samples) < 20:
            self.samples.append(sample)


class Unexpected(Exception):
    pass


class Client:
    """HTTP to the web processes with failover, measuring every request."""

    def __init__(self, base_urls: list[str], tally: Tally, rng: random.Random) -> None:
        self.clients = [httpx.Client(base_url=url, timeout=30) for url in base_urls]
        self.tally = tally
        self.rng = rng
        self.turn = itertools.cycle(range(len(self.clients)))

    def close(self) -> None:
        for client in self.clients:
            client.close()

    def call(self, step: str, method: str, path: str, headers: dict[str, str],
             body: Any = None, expected: tuple[int, ...] = (200,),
             params: dict[str, Any] | None = None) -> httpx.Response:
        """One request, failing over to the other web process on a lost connection (up to a
        minute: both could be restarting).  Raises Unexpected on an answer not `expected`."""
        first = next(self.turn)
        for attempt in range(60):
            client = self.clients[(first + attempt) % len(self.clients)]
            started = time.perf_counter()
            try:
                response = client.request(method, path, headers=headers, json=body,
                                          params=params)
            except httpx.TransportError as error:
                self.tally.transport_errors += 1
                if self.tally.transport_errors <= 5:
                    self.tally.note(f"{method} {path}: {error!r} (failing over)")
                time.sleep(0.05 if attempt % len(self.clients) else 1.0)
                continue
            self.tally.latencies[step].append(time.perf_counter() - started)
            self.tally.requests += 1
            self.tally.statuses[response.status_code] += 1
            if response.status_code >= 500:
                self.tally.server_errors += 1
                self.tally.note(f"{method} {path} -> {response.status_code}: "
                                f"{response.text[:300]}")
            if response.status_code not in expected:
                raise Unexpected(f"{method} {path} -> {response.status_code}: "
                                 f"{response.text[:300]}")
            return response
        raise Unexpected(f"{method} {path}: no web process answered for a minute")


class Counsellors:
    """One thread's participants and their legs, and the steps it takes."""

    def __init__(self, organizations: list[Organization], client: Client,
                 rng: random.Random) -> None:
        self.organizations = organizations
        self.client = client
        self.rng = rng
        self.tally = client.tally
        self.people: list[Person] = []
        self.cursors: dict[int, str] = {}

    # --- the steps ------------------------------------------------------------------------

    def step(self) -> None:
        action = self.rng.choices([a for a, _ in MIX], [w for _, w in MIX])[0]
        if action in ("send", "advance", "cancel", "withdraw", "read") and not self.people:
            action = "register"
        try:
            getattr(self, action)()
        except Unexpected as error:
            self.tally.unexpected += 1
            self.tally.note(str(error))

    def register(self) -> None:
        organization = self.rng.choice(self.organizations)
        response = self.client.call(
            "register", "POST", "/api/v1/participants", self._creating(organization),
            {"given_name": self.rng.choice(["Amina", "Luis", "Thi", "Omar", "Nadia"]),
             "family_name": self.rng.choice(["Benali", "Garcia", "Nguyen", "Haddad"]),
             "preferred_language": self.rng.choice(["fr", "en", "es", "ar"]),
             # a contact of their own, so that the hub's duplicate detection lets them in
             "email": f"p-{uuid.uuid4().hex[:12]}@example.org"},
            expected=(201,))
        participant_id = response.json()["id"]
        consent = self.client.call(
            "consent", "POST", f"/api/v1/participants/{participant_id}/consents",
            self._creating(organization),
            {"purpose": "referral_sharing", "network_wide": True, "evidence": "written"},
            expected=(201,))
        self.people.append(Person(participant_id, organization.index, consent.json()["id"]))
        if len(self.people) > 40:  # keep the working set of a counsellor's caseload
            self.people.pop(0)

    def send(self) -> None:
        person = self.rng.choice([p for p in self.people if not p.withdrawn] or self.people)
        if person.withdrawn:
            return self.read()
        sender = self.organizations[person.organization]
        receiver = self.rng.choice([o for o in self.organizations if o is not sender])
        pathway = self.rng.choice(PATHWAYS)
        body = {"participant_id": person.id, "to_organization_id": receiver.id,
                "pathway": pathway, "priority": "urgent" if self.rng.random() < 0.2
                else "routine", "reason_for_referral": "Recherche d'emploi en région",
                "needs": ["francisation"] if self.rng.random() < 0.3 else []}
        if pathway == "entrepreneurship":
            body["stage"] = "exploration"
        response = self.client.call("send", "POST", "/api/v1/referrals",
                                    self._creating(sender), body, expected=(201,))
        person.legs.append(Leg(response.json()["id"], sender.index, receiver.index))

    def advance(self) -> None:
        """The receiver of one open leg answers it (a slow receiver seldom does)."""
        legs = self._open_legs()
        if not legs:
            return self.send()
        person, leg = self.rng.choice(legs)
        receiver = self.organizations[leg.receiver]
        if receiver.slow and leg.status == "sent" and self.rng.random() > SLOW_ANSWER:
            return self.read()
        draw = self.rng.random()
        if leg.status == "sent":
            action, body = (("acknowledge", {}) if draw < 0.85 else
                            ("decline", {"reason": self.rng.choice(DECLINE_REASONS)}))
        elif leg.status == "acknowledged":
            action, body = (("accept", {}) if draw < 0.7 else
                            ("decline", {"reason": "no_capacity"}) if draw < 0.8 else
                            ("forward", {"to_organization_id": self._forward_target(leg)}))
        elif leg.status == "accepted":
            action, body = (("start", {}) if draw < 0.8 else
                            ("complete", {"outcome": "no_show"}) if draw < 0.9 else
                            ("forward", {"to_organization_id": self._forward_target(leg)}))
        else:  # in_progress
            action, body = (("complete", {"outcome": self.rng.choice(OUTCOMES)})
                            if draw < 0.9 else
                            ("forward", {"to_organization_id": self._forward_target(leg)}))
        self._transition(person, leg, receiver, action, body)

    def cancel(self) -> None:
        legs = self._open_legs()
        if not legs:
            return self.send()
        person, leg = self.rng.choice(legs)
        self._transition(person, leg, self.organizations[leg.sender], "cancel",
                         {"reason": "no_longer_needed"})

    def withdraw(self) -> None:
        """The participant withdraws consent: the hub cancels their open legs."""
        candidates = [p for p in self.people if not p.withdrawn and
                      any(leg.status not in TERMINAL for leg in p.legs)]
        if not candidates:
            return self.poll()
        person = self.rng.choice(candidates)
        organization = self.organizations[person.organization]
        self.client.call("withdraw", "POST", f"/api/v1/consents/{person.consent_id}/withdraw",
                         organization.headers, {}, expected=(200,))
        person.withdrawn = True
        for leg in person.legs:
            if leg.status not in TERMINAL:
                self._refresh(leg)
                if leg.status not in TERMINAL:
                    raise Unexpected(f"leg {leg.id} still {leg.status} after the consent "
                                     f"of its participant was withdrawn")

    def poll(self) -> None:
        organization = self.rng.choice(self.organizations)
        params = {"limit": 200}
        if organization.index in self.cursors:
            params["after"] = self.cursors[organization.index]
        response = self.client.call("poll", "GET", "/api/v1/events", organization.headers,
                                    params=params)
        self.cursors[organization.index] = response.json()["next_cursor"]

    def read(self) -> None:
        person = self.rng.choice(self.people)
        if not person.legs:
            return
        leg = self.rng.choice(person.legs)
        self._refresh(leg)

    # --- helpers --------------------------------------------------------------------------

    def _creating(self, organization: Organization) -> dict[str, str]:
        return {**organization.headers, "Idempotency-Key": str(uuid.uuid4())}

    def _open_legs(self) -> list[tuple[Person, Leg]]:
        return [(p, leg) for p in self.people for leg in p.legs if leg.status not in TERMINAL]

    def _forward_target(self, leg: Leg) -> str:
        return self.rng.choice([o for o in self.organizations
                                if o.index not in (leg.sender, leg.receiver)]).id

    def _refresh(self, leg: Leg) -> dict[str, Any]:
        """Read the leg as its sender sees it; the local copy follows."""
        seen = self.client.call("read", "GET", f"/api/v1/referrals/{leg.id}",
                                self.organizations[leg.sender].headers).json()
        leg.status = seen["status"]
        return seen

    def _transition(self, person: Person, leg: Leg, by: Organization, action: str,
                    body: dict[str, Any]) -> None:
        path = f"/api/v1/referrals/{leg.id}/{action}"
        expected = (201,) if action == "forward" else (200,)
        before = self.tally.transport_errors
        response = self.client.call(action, "POST", path, by.headers, body,
                                    expected=(*expected, 409))
        if response.status_code != 409:
            leg.status = TARGET[action]
            if action == "forward":
                new = response.json()
                person.legs.append(Leg(new["id"], leg.receiver, by_index(new, self)))
            return
        # 409: either the hub changed the leg on its own (expired by the scheduler, cancelled
        # by a consent withdrawal), or our first attempt went through before its answer was
        # lost to a killed web process.
        seen = self._refresh(leg)
        retried = self.tally.transport_errors > before
        if retried and seen["status"] == TARGET[action]:
            self.tally.recovered_retries += 1
            if action == "forward" and seen.get("forwarded_to"):
                new = self.client.call("read", "GET", f"/api/v1/referrals/"
                                       f"{seen['forwarded_to']}", by.headers).json()
                person.legs.append(Leg(new["id"], leg.receiver, by_index(new, self)))
            return
        if seen["status"] == "expired" or (seen["status"] == "cancelled" and person.withdrawn):
            self.tally.hub_conflicts += 1
            return
        raise Unexpected(f"POST {path} -> 409 with the leg {seen['status']}: "
                         f"{response.text[:300]}")


TERMINAL = frozenset({"declined", "completed", "cancelled", "expired", "forwarded"})
TARGET = {"acknowledge": "acknowledged", "accept": "accepted", "decline": "declined",
          "start": "in_progress", "complete": "completed", "forward": "forwarded",
          "cancel": "cancelled"}


def by_index(leg: dict[str, Any], counsellors: Counsellors) -> int:
    return next(o.index for o in counsellors.organizations
                if o.id == leg["to_organization_id"])


def authenticate(base_url: str, organizations: list[Organization]) -> None:
    with httpx.Client(base_url=base_url, timeout=30) as client:
        for organization in organizations:
            response = client.post("/oauth/token", data={"grant_type": "client_credentials"},
                                   auth=(organization.client_id, organization.client_secret))
            response.raise_for_status()
            organization.headers = {
                "Authorization": f"Bearer {response.json()['access_token']}"}


def generate(base_urls: list[str], organizations: list[Organization], threads: int,
             seconds: float, stop: threading.Event, seed: int = 20) -> list[Tally]:
    """`threads` threads of counsellors for `seconds`; their tallies."""
    tallies = [Tally() for _ in range(threads)]
    ends_at = time.monotonic() + seconds

    def run(index: int) -> None:
        rng = random.Random(seed * 1000 + index)
        client = Client(base_urls, tallies[index], rng)
        counsellors = Counsellors(organizations, client, rng)
        try:
            while time.monotonic() < ends_at and not stop.is_set():
                counsellors.step()
        finally:
            client.close()

    workers = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return tallies


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of seconds, in milliseconds."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)] * 1000
