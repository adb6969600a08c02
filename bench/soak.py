"""Soak test of the production topology under load and faults (`python -m bench.soak`).

On its own PostgreSQL server (port 54334 in /tmp/maillage-pg-soak, fsync on; another with
HUB_BENCH_PG_PORT / HUB_BENCH_PG_DIR): two web services (`gunicorn hub.wsgi:app`, one worker
process each) and two `hub worker` processes.  20 organizations,
each with an OAuth client and a webhook endpoint at a local receiver that sometimes answers
500 or hangs (bench/soak_receiver.py); a load generator plays their partner systems
(bench/soak_load.py); a chaos loop SIGKILLs a random web or worker process every 30-60 s and
starts it again.  Four of the organizations are slow to acknowledge and four slow to decide
and start, by deadline policies of 0 business days (`hub deadlines set`), so their legs go
past their deadlines during the run and the workers' scheduler must act on them.

At the end: load stops, one last pass of the checks (`hub checks run`), the webhook queue
drains, and bench/soak_checks.py verifies what must hold.  Prints the figures; exits 1 if a
check fails.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from click.testing import CliRunner
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text

from bench import soak_checks
from bench.databases import bench_server, fresh_postgresql_database
from bench.lifecycle import free_port
from bench.soak_load import Organization, Tally, authenticate, generate, percentile
from bench.soak_receiver import running_partners
from hub.cli import main as hub_main
from hub.followups.scheduler import lock_holder

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# Its own PostgreSQL server (fsync on); HUB_BENCH_PG_PORT / HUB_BENCH_PG_DIR name another.
PG_PORT, PG_DIR = bench_server("54334", "/tmp/maillage-pg-soak")
ORGANIZATIONS = 20
KINDS = ("community", "regional_partner", "entrepreneurship_agency",
         "cooperative_development", "insertion_enterprise", "employer")
SLOW_ACKNOWLEDGE = range(0, 4)  # organizations whose legs expire unless answered at once
SLOW_DECIDE = range(4, 8)  # organizations that miss the decide and start deadlines
# Names of the processes of a service in the memory figures: (service kind, role).
ROLES = {("web", "main"): "gunicorn master", ("web", "child0"): "gunicorn worker",
         ("wor", "main"): "hub worker"}


def log(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


# --- processes ------------------------------------------------------------------------------

@dataclass
class Managed:
    """One service process (its own process group), restarted after each kill."""

    name: str
    command: list[str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    kills: int = 0
    peak_rss_kb: dict[str, int] = field(default_factory=dict)  # role in group -> kB

    def start(self) -> None:
        with self.log_path.open("ab") as log_file:
            self.process = subprocess.Popen(self.command, env=self.env, cwd=ROOT,
                                            stdout=log_file, stderr=log_file,
                                            start_new_session=True)

    def pids(self) -> dict[str, int]:
        """role -> pid: the main process, and for gunicorn its worker."""
        if self.process is None or self.process.poll() is not None:
            return {}
        found = {"main": self.process.pid}
        try:
            children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
            for i, child in enumerate(children.read_text().split()):
                found[f"child{i}"] = int(child)
        except OSError:
            pass
        return found

    def sample_memory(self) -> None:
        for role, pid in self.pids().items():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith("VmHWM:"):  # the process's peak resident set
                    kb = int(line.split()[1])
                    self.peak_rss_kb[role] = max(kb, self.peak_rss_kb.get(role, 0))

    def kill(self) -> None:
        assert self.process is not None
        self.sample_memory()
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.kills += 1

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.sample_memory()
        for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 5)):
            try:
                os.killpg(self.process.pid, sig)
                self.process.wait(timeout=wait)
                return
            except ProcessLookupError:
                return
            except subprocess.TimeoutExpired:
                continue


def wait_ready(base_url: str, process: Managed, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.process is not None and process.process.poll() is not None:
            break
        try:
            if httpx.get(base_url + "/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    tail = process.log_path.read_text(errors="replace")[-3000:]
    raise RuntimeError(f"{process.name} not ready:\n{tail}")


def chaos(services: list[Managed], web_urls: dict[str, str], stop: threading.Event,
          rng: random.Random, kills: list[str]) -> None:
    """Every 30-60 s: SIGKILL one service, start it again at once."""
    while not stop.wait(rng.uniform(30, 60)):
        victim = rng.choice(services)
        log(f"chaos: SIGKILL {victim.name} (pid {victim.process.pid if victim.process else '?'})")
        victim.kill()
        kills.append(f"{datetime.now(UTC):%H:%M:%S} {victim.name}")
        victim.start()
        if victim.name in web_urls:
            wait_ready(web_urls[victim.name], victim)


def watch(services: list[Managed], engine: Any, stop: threading.Event,
          leaders: list[str]) -> None:
    """Every 2 s: each process's peak memory, and which worker leads the scheduled checks
    (the advisory lock's holder names its process id); `leaders` gets each change."""
    current = None
    while not stop.wait(2.0):
        for service in services:
            service.sample_memory()
        try:
            with engine.connect() as connection:
                holder = lock_holder(connection)
        except Exception:  # the database is busy: next time
            continue
        pid = int(holder.application_name.rsplit(":", 1)[1]) if holder else None
        name = next((s.name for s in services if s.pids().get("main") == pid), str(pid))
        if name != current:
            current = name
            leaders.append(f"{datetime.now(UTC):%H:%M:%S} {name}")
            log(f"scheduled checks led by {name}")


# --- database and accounts ------------------------------------------------------------------

def hub_command(env: dict[str, str], *args: str) -> dict[str, Any]:
    """`hub ARGS...` run in this process (click's runner): the same commands as a shell's,
    without starting an interpreter for each on a busy machine."""
    result = CliRunner().invoke(hub_main, list(args), env=env)
    if result.exit_code != 0:
        raise RuntimeError(f"hub {' '.join(args)} failed ({result.exit_code}): "
                           f"{result.output}{result.exception!r}")
    stdout = result.stdout.strip()
    return json.loads(stdout) if stdout.startswith("{") else {}


def make_organizations(env: dict[str, str]) -> list[Organization]:
    """20 organizations with an OAuth client each, and the slow ones' deadline policies
    (`hub org create`, `hub client create`, `hub deadlines set`)."""
    tag = secrets.token_hex(2)
    organizations = []
    for index in range(ORGANIZATIONS):
        org = hub_command(env, "org", "create", "--name", f"Soak {tag} organisme {index}",
                          "--kind", KINDS[index % len(KINDS)],
                          "--region", ("06", "01", "05", "03")[index % 4])
        client = hub_command(env, "client", "create", "--org", org["id"])
        organizations.append(Organization(index, org["id"], client["client_id"],
                                          client["client_secret"],
                                          slow=index in SLOW_ACKNOWLEDGE))
    rules = [(index, "acknowledge") for index in SLOW_ACKNOWLEDGE]
    rules += [(index, check) for index in SLOW_DECIDE for check in ("decide", "start")]
    for index, check in rules:
        for priority in ("routine", "urgent"):
            hub_command(env, "deadlines", "set", "--check", check, "--priority", priority,
                        "--days", "0", "--org", organizations[index].id)
    return organizations


def subscribe(base_url: str, organizations: list[Organization], hook_url: Any) -> None:
    with httpx.Client(base_url=base_url, timeout=30) as client:
        for organization in organizations:
            response = client.post("/api/v1/webhook-endpoints", headers=organization.headers,
                                   json={"url": hook_url(organization.index),
                                         "event_types": ["*"],
                                         "description": "soak receiver"})
            if response.status_code != 201:
                raise RuntimeError(f"webhook endpoint: {response.status_code} {response.text}")


def drain(engine: Any, seconds: float) -> dict[str, int]:
    """Wait until the outbox is empty and no delivery is pending; what is left."""
    deadline = time.monotonic() + seconds
    while True:
        with engine.connect() as connection:
            left = {"outbox": connection.execute(text("SELECT count(*) FROM outbox")).scalar_one(),
                    "pending": connection.execute(text(
                        "SELECT count(*) FROM webhook_deliveries WHERE state = 'pending'"
                    )).scalar_one(),
                    "dead": connection.execute(text(
                        "SELECT count(*) FROM webhook_deliveries WHERE state = 'dead'"
                    )).scalar_one()}
        if (left["outbox"] == 0 and left["pending"] == 0) or time.monotonic() > deadline:
            return left
        time.sleep(2)


def server_errors_in_logs(paths: list[Path]) -> int:
    """5xx answers in the web services' JSON access logs (the server's own count)."""
    count = 0
    for path in paths:
        for line in path.read_text(errors="replace").splitlines():
            if '"status": 5' in line:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if isinstance(entry.get("status"), int) and entry["status"] >= 500:
                    count += 1
    return count


# --- the run --------------------------------------------------------------------------------

def summarize(tallies: list[Tally], seconds: float) -> dict[str, Any]:
    merged: dict[str, list[float]] = {}
    for tally in tallies:
        for step, values in tally.latencies.items():
            merged.setdefault(step, []).extend(values)
    every = [v for values in merged.values() for v in values]
    requests = sum(t.requests for t in tallies)
    statuses: dict[int, int] = {}
    for tally in tallies:
        for status, n in tally.statuses.items():
            statuses[status] = statuses.get(status, 0) + n
    unexpected = sum(t.unexpected for t in tallies)
    transport = sum(t.transport_errors for t in tallies)
    return {
        "requests": requests, "seconds": round(seconds, 1),
        "req_per_s": round(requests / seconds, 1),
        "p50_ms": round(percentile(every, 0.5), 1), "p99_ms": round(percentile(every, 0.99), 1),
        "steps": {step: {"requests": len(v), "p50_ms": round(percentile(v, 0.5), 1),
                         "p99_ms": round(percentile(v, 0.99), 1)}
                  for step, v in sorted(merged.items())},
        "statuses": dict(sorted(statuses.items())),
        "server_errors": sum(t.server_errors for t in tallies),
        "unexpected": unexpected, "transport_errors": transport,
        "hub_conflicts": sum(t.hub_conflicts for t in tallies),
        "recovered_retries": sum(t.recovered_retries for t in tallies),
        "error_rate_pct": round(100 * (unexpected + transport) / max(1, requests + transport), 3),
        "samples": [s for t in tallies for s in t.samples][:15],
    }


def run(args: argparse.Namespace) -> int:
    started = datetime.now(UTC)
    workdir = Path(tempfile.mkdtemp(prefix="maillage-soak-"))
    log(f"soak: {args.minutes:g} min, {args.threads} load threads; logs in {workdir}")
    rng = random.Random(args.seed)
    with ExitStack() as stack:
        database_url = stack.enter_context(
            fresh_postgresql_database("hub_soak", port=PG_PORT, directory=PG_DIR))
        partners = stack.enter_context(running_partners())
        env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
        # development mode: webhooks may go to http://127.0.0.1 (the local receiver); real
        # secrets anyway, and everything else as in production.
        env.update(HUB_ENV="development", HUB_DATABASE_URL=database_url,
                   HUB_SECRET_KEY=secrets.token_urlsafe(36),
                   HUB_DATA_KEYS=Fernet.generate_key().decode(),
                   HUB_WEB_THREADS=str(args.web_threads), HUB_DB_POOL_SIZE="10",
                   HUB_WEBHOOK_LEASE_SECONDS="30", HUB_LOG_LEVEL="INFO",
                   HUB_MAIL_DIR=str(workdir / "mail"))
        hub_command(env, "db", "upgrade")
        log("creating 20 organizations, their clients and deadline policies (hub commands)")
        organizations = make_organizations(env)

        ports = {f"web-{i}": free_port() for i in (1, 2)}
        web_urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        services = [Managed(name, [str(BIN / "gunicorn"), "hub.wsgi:app", "--bind",
                                   f"127.0.0.1:{port}", "--workers", "1", "--threads",
                                   str(args.web_threads), "--worker-class", "gthread",
                                   "--graceful-timeout", "10"],
                            env, workdir / f"{name}.log") for name, port in ports.items()]
        services += [Managed(f"worker-{i}", [str(BIN / "hub"), "worker"], env,
                             workdir / f"worker-{i}.log") for i in (1, 2)]
        for service in services:
            service.start()
            stack.callback(service.stop)
        for name, url in web_urls.items():
            wait_ready(url, next(s for s in services if s.name == name))
        base_urls = list(web_urls.values())
        authenticate(base_urls[0], organizations)
        subscribe(base_urls[0], organizations, partners.url)

        stop = threading.Event()
        kills: list[str] = []
        leaders: list[str] = []
        engine = create_engine(database_url)
        stack.callback(engine.dispose)
        background = [threading.Thread(target=chaos, args=(services, web_urls, stop, rng, kills),
                                       daemon=True),
                      threading.Thread(target=watch, args=(services, engine, stop, leaders),
                                       daemon=True)]
        for thread in background:
            thread.start()
        log(f"load: {args.threads} threads for {args.minutes:g} min, chaos every 30-60 s")
        progress = threading.Thread(target=_progress, args=(partners, stop), daemon=True)
        progress.start()
        load_started = time.perf_counter()
        tallies = generate(base_urls, organizations, args.threads, args.minutes * 60, stop,
                           seed=args.seed)
        load_seconds = time.perf_counter() - load_started
        stop.set()
        for thread in background:
            thread.join(timeout=120)
        load_ended = datetime.now(UTC)
        for service in services:  # the chaos loop may have been between kill and start
            if service.process is None or service.process.poll() is not None:
                service.start()

        with engine.connect() as connection:
            fired_during_run = connection.execute(text(
                "SELECT count(*) FROM referral_checks WHERE fired_at <= :t"),
                {"t": load_ended}).scalar_one()
        log("load over: one last pass of the checks, then waiting for webhooks to drain")
        checked_at = datetime.now(UTC)
        last_pass = hub_command(env, "checks", "run")
        left = drain(engine, args.drain_seconds)
        for service in services:
            service.sample_memory()

        log("checking")
        summary = summarize(tallies, load_seconds)
        logged_5xx = server_errors_in_logs([s.log_path for s in services[:2]])
        once, ordered, deliveries = soak_checks.webhooks_exactly_once(
            base_urls[0], organizations, partners)
        with engine.connect() as connection:
            deadlines, fired = soak_checks.deadlines_once(connection, checked_at)
            possible, agree, legs = soak_checks.states_agree(connection)
            events_total = connection.execute(text("SELECT count(*) FROM events")).scalar_one()
        checks = {
            "no 5xx answered": (summary["server_errors"] == 0 and logged_5xx == 0,
                                f"client saw {summary['server_errors']}, access logs show "
                                f"{logged_5xx}"),
            "load generator errors": (summary["unexpected"] == 0,
                                      f"{summary['unexpected']} unexpected answers, "
                                      f"{summary['transport_errors']} lost connections "
                                      f"(killed web processes, retried on the other), "
                                      f"error rate {summary['error_rate_pct']} %"),
            "webhook queue drained": (left["outbox"] == 0 and left["pending"] == 0
                                      and left["dead"] == 0, json.dumps(left)),
            "webhooks exactly once after dedup": once,
            "webhooks in order per subject": ordered,
            "deadline checks once per leg": deadlines,
            "no leg in an impossible state": possible,
            "event log agrees with the legs": agree,
        }
        memory = {f"{s.name} {ROLES.get((s.name[:3], role), role)}": round(kb / 1024, 1)
                  for s in services for role, kb in sorted(s.peak_rss_kb.items())}
        result = {
            "started": f"{started:%Y-%m-%d %H:%M} UTC", "machine": machine(),
            "args": vars(args), "load": summary, "kills": kills, "leaders": leaders,
            "checks_fired_by_workers_during_run": fired_during_run,
            "last_pass": last_pass, "checks_fired": fired, "deliveries": deliveries,
            "answers_of_receiver": partners.answered, "legs": legs,
            "events": events_total, "peak_rss_mb": memory,
            "checks": {name: {"pass": ok, "detail": detail}
                       for name, (ok, detail) in checks.items()},
            "logs": str(workdir),
        }
    report(result)
    results_dir = ROOT / "bench" / "results"
    results_dir.mkdir(exist_ok=True)
    path = results_dir / f"soak-{started:%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(result, indent=2, default=str))
    print(f"\nResults written to {path.relative_to(ROOT)}")
    return 0 if all(ok for ok, _ in checks.values()) else 1


def _progress(partners: Any, stop: threading.Event) -> None:
    while not stop.wait(30):
        log(f"  ... {len(partners.received)} webhook deliveries received so far")


def machine() -> str:
    memory = subprocess.run(["free", "-h"], capture_output=True, text=True).stdout.split()[7]
    model = next((line.split(":", 1)[1].strip() for line in
                  Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), "?")
    return (f"nproc {os.cpu_count()} ({model}), memory {memory}, "
            f"load average {os.getloadavg()[0]:.2f} at the end")


def report(result: dict[str, Any]) -> None:
    load = result["load"]
    print(f"Soak {result['started']}, {result['machine']}")
    print(f"Load: {load['requests']} requests in {load['seconds']} s = {load['req_per_s']} "
          f"req/s; p50 {load['p50_ms']} ms, p99 {load['p99_ms']} ms; answers "
          f"{load['statuses']}; 409 from the hub's own changes {load['hub_conflicts']}; "
          f"retried transitions found applied {load['recovered_retries']}")
    for step, s in load["steps"].items():
        print(f"  {step:<12} {s['requests']:>7}  p50 {s['p50_ms']:>7} ms  p99 {s['p99_ms']:>7} ms")
    print(f"Kills (SIGKILL, then restart): {len(result['kills'])}: {', '.join(result['kills'])}")
    print(f"Scheduled checks led by (from): {', '.join(result['leaders'])}")
    print(f"Events: {result['events']}; legs by status: {result['legs']}")
    print(f"Deadline checks: {result['checks_fired']} "
          f"({result['checks_fired_by_workers_during_run']} fired by the workers during the "
          f"run; the last pass: {result['last_pass']})")
    print(f"Webhooks: {result['deliveries']}; receiver answered {result['answers_of_receiver']}"
          " (0 = hung past the timeout)")
    print("Peak RSS (MB): " + ", ".join(f"{k} {v}" for k, v in result["peak_rss_mb"].items()))
    print("Checks:")
    for name, check in result["checks"].items():
        print(f"  {'PASS' if check['pass'] else 'FAIL'}  {name}: {check['detail']}")
    for sample in load["samples"]:
        print(f"  sample: {sample}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=8, help="load generator threads")
    parser.add_argument("--web-threads", type=int, default=8,
                        help="threads of each web process")
    parser.add_argument("--drain-seconds", type=float, default=240,
                        help="how long to wait for webhooks still queued at the end")
    parser.add_argument("--seed", type=int, default=20)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up as on Ctrl-C
    return run(args)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
