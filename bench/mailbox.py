"""New-leg mail latency (issue 17, design §14): time from a leg's commit to its mail handed to
SMTP, next to the webhook's commit-to-receipt time for the same legs, in the same run.

Target: p95 under 2 s for both, over 1,000 legs.

    .venv/bin/python bench/mailbox.py                 # PostgreSQL (the tests' server)
    .venv/bin/python bench/mailbox.py --sqlite        # the embedded default
    .venv/bin/python bench/mailbox.py --legs 200 --rate 50

Method: one hub app on a fresh database, its worker running in background threads as in
`hub run` (fan-out, webhook delivery, mail); a local SMTP sink (a small socketserver speaking
just enough SMTP, in a thread) and a local HTTP receiver (a thread) record the arrival time of
each message, found by the leg's id (the mail's reference, the event's subject).  The
receiving organization has one contact marked `notify_referrals` and one webhook endpoint for
`referral.sent`.  Legs are sent through the API (the app's test client, in the same process)
at `--rate` legs per second; each leg's commit time is taken when its 201 comes back (the
request commits just before answering, so the latencies are at most that much too short).
Arrival at the sink is when the SMTP server accepted the message (end of DATA): "handed to
SMTP".  Prints p50/p95/max of both next to the target.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if sys.path and Path(sys.path[0] or ".").resolve() == ROOT / "bench":
    sys.path[0] = str(ROOT)  # `webhooks/` is a package of the repository, not this folder

import argparse  # noqa: E402
import email  # noqa: E402
import email.policy  # noqa: E402
import http.server  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import socketserver  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from typing import Any  # noqa: E402

from bench.databases import fresh_hub_database, start_server  # noqa: E402
from hub import create_app  # noqa: E402
from hub.accounts import clients  # noqa: E402
from hub.config import Settings  # noqa: E402
from hub.db import db  # noqa: E402
from hub.directory.organizations import create_organization  # noqa: E402
from hub.ops import upgrade_database  # noqa: E402
from hub.worker import Worker  # noqa: E402

TARGET_P95_SECONDS = 2.0
REFERENCE = re.compile(r"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\s*$")


class Arrivals:
    """When each leg's message arrived, by leg id (thread-safe)."""

    def __init__(self) -> None:
        self.times: dict[str, float] = {}
        self.lock = threading.Lock()

    def record(self, leg_id: str | None) -> None:
        if leg_id:
            with self.lock:
                self.times.setdefault(leg_id, time.time())


class SmtpSink(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, arrivals: Arrivals) -> None:
        super().__init__(("127.0.0.1", 0), SmtpSinkHandler)
        self.arrivals = arrivals


class SmtpSinkHandler(socketserver.StreamRequestHandler):
    server: SmtpSink

    def handle(self) -> None:
        self.wfile.write(b"220 sink ESMTP\r\n")
        while line := self.rfile.readline():
            verb = line[:4].upper()
            if verb == b"EHLO":
                self.wfile.write(b"250-sink\r\n250 8BITMIME\r\n")
            elif verb == b"DATA":
                self.wfile.write(b"354 go on\r\n")
                data = []
                while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                    data.append(chunk)
                message = email.message_from_bytes(b"".join(data), policy=email.policy.default)
                body = message.get_body(("plain",))
                found = REFERENCE.search(body.get_content().strip()) if body else None  # type: ignore[attr-defined]
                self.server.arrivals.record(found.group(1) if found else None)
                self.wfile.write(b"250 queued\r\n")
            elif verb == b"QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 ok\r\n")


def webhook_receiver(arrivals: Arrivals) -> http.server.ThreadingHTTPServer:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            event = json.loads(body)
            if event.get("type") == "referral.sent":
                arrivals.record(str(event.get("subject", "")).removeprefix("referrals/"))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    return http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)


@contextmanager
def serving(server: socketserver.BaseServer) -> Iterator[None]:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


def partner(app: Any, name: str, kind: str = "community") -> tuple[str, Any]:
    """An organization with a client; its id and a function that calls the API as it."""
    with app.app_context(), db.job_session() as session:
        organization = create_organization(session, name=name, kind=kind, region="01")
        client, secret = clients.create_client(session, organization=organization)
        organization_id, client_id = str(organization.id), client.client_id
    token = app.test_client().post("/oauth/token", data={
        "grant_type": "client_credentials", "client_id": client_id,
        "client_secret": secret}).get_json()["access_token"]

    def call(method: str, path: str, body: Any = None) -> Any:
        response = app.test_client().open(path, method=method, json=body,
                                          headers={"Authorization": f"Bearer {token}"})
        assert response.status_code < 300, response.get_data(as_text=True)
        return response.get_json()

    return organization_id, call


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(share * len(ordered)) - 1))]


def run(database_url: str, legs: int, rate: float) -> dict[str, list[float]]:
    upgrade_database(database_url)
    mails, hooks = Arrivals(), Arrivals()
    sink, receiver = SmtpSink(mails), webhook_receiver(hooks)
    with serving(sink), serving(receiver):
        app = create_app(Settings(
            env="development", database_url=database_url, smtp_host="127.0.0.1",
            smtp_port=sink.server_address[1], smtp_starttls=False,
            public_url="https://maillage.example"))
        sender_id, sender = partner(app, "Carrefour d'intégration (banc d'essai)")
        receiver_id, receiver_call = partner(app, "Place aux jeunes (banc d'essai)",
                                             "regional_partner")
        receiver_call("PATCH", f"/api/v1/organizations/{receiver_id}", {"contacts": [
            {"name": "Accueil", "email": "accueil@example.org", "notify_referrals": True}]})
        receiver_call("POST", "/api/v1/webhook-endpoints", {
            "url": f"http://127.0.0.1:{receiver.server_address[1]}/hook",
            "event_types": ["referral.sent"]})
        worker = Worker(app)
        worker.start()
        committed: dict[str, float] = {}
        try:
            participant = sender("POST", "/api/v1/participants", {
                "given_name": "Amina", "family_name": "Benali", "preferred_language": "fr",
                "email": "amina@example.org"})
            sender("POST", f"/api/v1/participants/{participant['id']}/consents", {
                "purpose": "referral_sharing", "evidence": "written",
                "organization_ids": [receiver_id]})
            start = time.monotonic()
            for number in range(legs):
                pause = start + number / rate - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                leg = sender("POST", "/api/v1/referrals", {
                    "participant_id": participant["id"], "to_organization_id": receiver_id,
                    "pathway": "settlement", "priority": "routine"})
                committed[leg["id"]] = time.time()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and (
                    len(mails.times) < legs or len(hooks.times) < legs):
                time.sleep(0.2)
        finally:
            worker.stop()
            app.extensions["hub_db"][0].dispose()
    missing = {"mail": legs - len(set(committed) & set(mails.times)),
               "webhook": legs - len(set(committed) & set(hooks.times))}
    if any(missing.values()):
        print(f"missing after 60 s: {missing}")
    return {"mail": [mails.times[i] - t for i, t in committed.items() if i in mails.times],
            "webhook": [hooks.times[i] - t for i, t in committed.items() if i in hooks.times]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--legs", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=20.0, help="legs sent per second")
    parser.add_argument("--sqlite", action="store_true", help="the embedded SQLite, not "
                        "PostgreSQL")
    args = parser.parse_args()
    admin_url = None if args.sqlite else start_server()
    with fresh_hub_database(admin_url, "hub_bench_mailbox") as url:
        backend = "SQLite" if args.sqlite else "PostgreSQL"
        print(f"{args.legs} legs at {args.rate:g}/s on {backend}, worker in threads "
              f"(as `hub run`)")
        latencies = run(url, args.legs, args.rate)
    print(f"{'path':<34} {'n':>5} {'p50 s':>7} {'p95 s':>7} {'max s':>7}  target")
    for name, label in (("mail", "commit -> mail handed to SMTP"),
                        ("webhook", "commit -> webhook received")):
        values = latencies[name]
        if not values:
            print(f"{label:<34} {0:>5} {'—':>7} {'—':>7} {'—':>7}  p95 < 2 s: NOT MET")
            continue
        p95 = percentile(values, 0.95)
        verdict = "met" if p95 < TARGET_P95_SECONDS else "NOT MET"
        print(f"{label:<34} {len(values):>5} {percentile(values, 0.5):>7.3f} {p95:>7.3f} "
              f"{max(values):>7.3f}  p95 < {TARGET_P95_SECONDS:g} s: {verdict}")


if __name__ == "__main__":
    main()
