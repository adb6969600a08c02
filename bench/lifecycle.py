"""Referral lifecycle throughput and latency over real HTTP, next to a same-server baseline.

Two configurations, measured in turn:
- postgresql: gunicorn (gthread) + a fresh database on a local PostgreSQL with fsync on;
- sqlite: `hub run`'s server (waitress) + a fresh SQLite file.
Both serve `bench.baseline_app:app`: the hub's app plus `POST /bench/baseline`, one
authenticated INSERT.  The baseline runs in the same server process as the API, so that the
server, Flask, the hub's hooks, token check, logging and commit cost the same on both sides:
the gap between the two workloads is the hub's own lifecycle work.

Workloads, each with `--clients` threads (one keep-alive HTTP connection each), every thread an
independent partner (its own sender and receiver organizations and OAuth clients, made with
the `hub` CLI, and one participant whose consent covers the receiver):
- baseline: POST /bench/baseline, again and again;
- lifecycle: send a referral (201), then the receiver acknowledges, accepts, starts and
  completes it (200 each);
- lifecycle_unchecked: the same with `X-Bench-Consent: off` on every request, so the server
  skips the consent query, the participant lock and the access-log insert (see
  bench/baseline_app.py): the foundation's lifecycle, redaction included.
The three workloads take turns in `--rounds` rounds of `--duration / --rounds` seconds each,
in an order that rotates every round (baseline, unchecked, lifecycle; then unchecked,
lifecycle, baseline; ...), their figures added up per workload, so that the machine's noise
and the database's growth hit all three alike.
Every request's latency counts; any other status is an error and makes the run exit 1.
Targets: lifecycle req/s >= 50 % of baseline req/s; lifecycle req/s >= 90 % of
lifecycle_unchecked req/s (consent costs under 10 %); on PostgreSQL lifecycle p99 < 50 ms.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from cryptography.fernet import Fernet

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script, too

from bench.databases import bench_server, fresh_postgresql_database  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# The benchmark's own PostgreSQL server (fsync on); another port and directory with
# HUB_BENCH_PG_PORT / HUB_BENCH_PG_DIR, e.g. when several benchmarks share the machine.
PG_PORT, PG_DIR = bench_server("54330", "/tmp/maillage-pgbench")
CONFIGS = {"postgresql": "gunicorn + PostgreSQL", "sqlite": "waitress + SQLite"}
LIFECYCLE_STEPS = (("acknowledge", {}), ("accept", {}), ("start", {}),
                   ("complete", {"outcome": "employed"}))
ROUTES = {"baseline": "/bench/baseline", "send": "/api/v1/referrals",
          **{a: f"/api/v1/referrals/<uuid:referral_id>/{a}" for a, _ in LIFECYCLE_STEPS}}
CONSENT_OFF = {"X-Bench-Consent": "off"}  # honoured by bench/baseline_app.py only
LIFECYCLE_SHARE_TARGET = 0.5
CONSENT_SHARE_TARGET = 0.9
PG_P99_TARGET_MS = 50.0


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- measuring ------------------------------------------------------------------------------

@dataclass
class Partner:
    """One virtual client: a sender and a receiver organization with their tokens."""

    sender: dict[str, str]  # request headers
    receiver: dict[str, str]
    participant_id: str
    receiver_org_id: str


@dataclass
class Tally:
    """What one thread saw: latencies (seconds) by step, and errors."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    requests: int = 0
    errors: int = 0
    samples: list[str] = field(default_factory=list)

    def post(self, client: httpx.Client, step: str, path: str, headers: dict[str, str],
             body: Any, expected: int) -> httpx.Response | None:
        started = time.perf_counter()
        try:
            response = client.post(path, headers=headers, json=body)
        except httpx.HTTPError as error:
            self.fail(f"POST {path}: {error!r}")
            return None
        self.latencies[step].append(time.perf_counter() - started)
        self.requests += 1
        if response.status_code != expected:
            self.fail(f"POST {path} -> {response.status_code} (expected {expected}): "
                      f"{response.text[:1000]}")
            return None
        return response

    def fail(self, sample: str) -> None:
        self.errors += 1
        if len(self.samples) < 5:
            self.samples.append(sample)


@dataclass
class Measured:
    """One workload's measured stretches (one, or one per round), added up."""

    tallies: list[Tally]
    seconds: float = 0.0
    ticks: list[int] = field(default_factory=lambda: [0, 0, 0])  # machine: busy, steal, total
    client_cpu: float = 0.0  # this process's CPU seconds
    log_slices: list[tuple[int, int]] = field(default_factory=list)  # of the server's log
    rounds: list[float] = field(default_factory=list)  # req/s of each stretch


def baseline_once(client: httpx.Client, partner: Partner, tally: Tally) -> None:
    tally.post(client, "baseline", "/bench/baseline", partner.sender, None, 201)


def lifecycle_once(client: httpx.Client, partner: Partner, tally: Tally) -> None:
    sent = tally.post(client, "send", "/api/v1/referrals", partner.sender, {
        "participant_id": partner.participant_id, "to_organization_id": partner.receiver_org_id,
        "pathway": "employment", "priority": "routine"}, 201)
    if sent is None:
        return
    referral_path = f"/api/v1/referrals/{sent.json()['id']}"
    for action, body in LIFECYCLE_STEPS:
        path = f"{referral_path}/{action}"
        if tally.post(client, action, path, partner.receiver, body, 200) is None:
            return


def cpu_ticks() -> tuple[int, int, int]:
    """(busy, stolen by the hypervisor, total) jiffies of the whole machine, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return user + nice + system + irq + softirq, steal, sum(fields)


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile, in milliseconds."""
    if not sorted_values:
        return math.nan
    return sorted_values[max(0, math.ceil(q * len(sorted_values)) - 1)] * 1000


def run_workload(base_url: str, partners: list[Partner], once: Callable[..., None],
                 duration: float, label: str, into: Measured | None = None) -> Measured:
    """`once` in a loop on every partner's thread for `duration` seconds, added to `into`."""
    measured = into or Measured([Tally() for _ in partners])
    tallies = measured.tallies
    stop_at = time.monotonic() + duration

    def loop(partner: Partner, tally: Tally) -> None:
        with httpx.Client(base_url=base_url, timeout=30) as client:
            while time.monotonic() < stop_at:
                once(client, partner, tally)

    threads = [threading.Thread(target=loop, args=pair, daemon=True)
               for pair in zip(partners, tallies, strict=True)]
    busy0, steal0, total0 = cpu_ticks()
    cpu0, requests0 = time.process_time(), sum(t.requests for t in tallies)
    started = last_report = time.perf_counter()
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        time.sleep(0.2)
        if time.perf_counter() - last_report >= 5:
            last_report = time.perf_counter()
            log(f"  {label}: {last_report - started:4.0f} s, "
                f"{sum(t.requests for t in tallies)} requests, "
                f"{sum(t.errors for t in tallies)} errors")
    elapsed = time.perf_counter() - started
    measured.seconds += elapsed
    measured.rounds.append(round((sum(t.requests for t in tallies) - requests0) / elapsed, 1))
    busy1, steal1, total1 = cpu_ticks()
    for i, delta in enumerate((busy1 - busy0, steal1 - steal0, total1 - total0)):
        measured.ticks[i] += delta
    measured.client_cpu += time.process_time() - cpu0
    return measured


def figures(measured: Measured, log_path: Path) -> dict[str, Any]:
    """Requests, req/s, latencies overall and by step (with the server's own), CPU."""
    tallies, elapsed = measured.tallies, measured.seconds
    busy, steal, total = measured.ticks
    routes = server_side(log_path, measured.log_slices)
    merged: dict[str, list[float]] = defaultdict(list)
    for tally in tallies:
        for step, values in tally.latencies.items():
            merged[step].extend(values)
    every = sorted(v for values in merged.values() for v in values)
    requests = sum(t.requests for t in tallies)
    return {
        "requests": requests,
        "errors": sum(t.errors for t in tallies),
        "error_samples": [s for t in tallies for s in t.samples][:10],
        "seconds": round(elapsed, 2),
        "req_per_s": round(requests / elapsed, 1),
        "p50_ms": round(percentile(every, 0.50), 2),
        "p99_ms": round(percentile(every, 0.99), 2),
        "steps": {step: {"requests": len(values),
                         "p50_ms": round(percentile(sorted(values), 0.50), 2),
                         "p99_ms": round(percentile(sorted(values), 0.99), 2),
                         "server": routes.get(ROUTES[step])}
                  for step, values in merged.items()},
        "rounds_req_per_s": measured.rounds,
        "cpu_busy_pct": round(100 * busy / max(1, total), 1),
        "cpu_steal_pct": round(100 * steal / max(1, total), 1),
        "client_cpu_pct": round(100 * measured.client_cpu / (elapsed * (os.cpu_count() or 1)),
                                1),
    }


def server_side(log_path: Path, slices: list[tuple[int, int]]
                ) -> dict[str, dict[str, float]]:
    """p50/p99 of the hub's own `duration_ms` (access log) by route, in slices of the log."""
    durations: dict[str, list[float]] = defaultdict(list)
    with log_path.open("rb") as log_file:
        lines = []
        for start, end in slices:
            log_file.seek(start)
            lines += log_file.read(end - start).splitlines()
        for line in lines:
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # gunicorn's own lines, or a line cut at the slice's edge
            if isinstance(entry, dict) and "duration_ms" in entry:
                durations[entry["route"]].append(entry["duration_ms"] / 1000)
    return {route: {"p50_ms": round(percentile(sorted(v), 0.5), 2),
                    "p99_ms": round(percentile(sorted(v), 0.99), 2)}
            for route, v in durations.items()}


# --- setting up -----------------------------------------------------------------------------

def hub_cli(env: dict[str, str], *args: str) -> dict[str, Any]:
    done = subprocess.run([str(BIN / "hub"), *args], env=env, cwd=ROOT, capture_output=True,
                          text=True)
    if done.returncode != 0:
        raise RuntimeError(f"hub {' '.join(args)} failed ({done.returncode}): {done.stderr}")
    return json.loads(done.stdout) if done.stdout.lstrip().startswith("{") else {}


def make_accounts(env: dict[str, str], count: int) -> list[dict[str, Any]]:
    """`count` sender/receiver organization pairs, each with an OAuth client, via the CLI."""
    tag = secrets.token_hex(3)

    def organization(name: str, kind: str, region: str) -> dict[str, Any]:
        org = hub_cli(env, "org", "create", "--name", name, "--kind", kind, "--region", region)
        return {"org_id": org["id"], **hub_cli(env, "client", "create", "--org", org["id"])}

    jobs = [(f"Bench {tag} sender {i}", "community", "06") for i in range(count)]
    jobs += [(f"Bench {tag} receiver {i}", "regional_partner", "01") for i in range(count)]
    with ThreadPoolExecutor(max_workers=2 * (os.cpu_count() or 1)) as pool:
        made = list(pool.map(lambda job: organization(*job), jobs))
    return [{"sender": made[i], "receiver": made[count + i]} for i in range(count)]


def connect(base_url: str, accounts: list[dict[str, Any]]) -> list[Partner]:
    """Tokens from /oauth/token, one participant per sender and their consent to share
    referrals with the receiver, over HTTP."""
    partners = []
    with httpx.Client(base_url=base_url, timeout=30) as client:
        def bearer(account: dict[str, Any]) -> dict[str, str]:
            response = client.post("/oauth/token", data={"grant_type": "client_credentials"},
                                   auth=(account["client_id"], account["client_secret"]))
            response.raise_for_status()
            return {"Authorization": f"Bearer {response.json()['access_token']}"}

        for pair in accounts:
            sender, receiver = bearer(pair["sender"]), bearer(pair["receiver"])
            response = client.post("/api/v1/participants", headers=sender, json={
                "given_name": "Amina", "family_name": "Benali", "preferred_language": "fr"})
            if response.status_code != 201:
                raise RuntimeError(f"POST /api/v1/participants -> {response.status_code}: "
                                   f"{response.text}")
            participant_id, receiver_org_id = response.json()["id"], pair["receiver"]["org_id"]
            response = client.post(f"/api/v1/participants/{participant_id}/consents",
                                   headers=sender, json={
                                       "purpose": "referral_sharing",
                                       "organization_ids": [receiver_org_id],
                                       "evidence": "written"})
            if response.status_code != 201:
                raise RuntimeError(f"POST .../consents -> {response.status_code}: "
                                   f"{response.text}")
            partners.append(Partner(sender, receiver, participant_id, receiver_org_id))
    return partners


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serving(command: list[str], env: dict[str, str], log_path: Path, port: int
            ) -> Iterator[str]:
    """Start the server, wait for /readyz, yield its URL; kill its process group at the end."""
    base_url = f"http://127.0.0.1:{port}"
    with log_path.open("ab") as log_file:
        server = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log_file, stderr=log_file,
                                  start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            if server.poll() is not None or time.monotonic() > deadline:
                tail = log_path.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"server not ready ({' '.join(command)}):\n{tail}")
            try:
                if httpx.get(base_url + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        yield base_url
    finally:
        for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
            try:
                os.killpg(server.pid, sig)
                server.wait(timeout=wait)
                break
            except ProcessLookupError:
                break
            except subprocess.TimeoutExpired:
                continue


@contextmanager
def configuration(name: str, workdir: Path, workers: int, threads: int, port: int
                  ) -> Iterator[tuple[dict[str, str], list[str]]]:
    """The environment and server command of one configuration, its database ready."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env["HUB_WEB_THREADS"] = str(threads)
    if name == "postgresql":
        command = [str(BIN / "gunicorn"), "bench.baseline_app:app", "--bind",
                   f"127.0.0.1:{port}", "--workers", str(workers), "--threads", str(threads),
                   "--worker-class", "gthread"]
        with fresh_postgresql_database("hub_bench", port=PG_PORT, directory=PG_DIR) as url:
            env.update(HUB_ENV="production", HUB_SECRET_KEY=secrets.token_urlsafe(36),
                       HUB_DATA_KEYS=Fernet.generate_key().decode(), HUB_DATABASE_URL=url)
            hub_cli(env, "db", "upgrade")
            yield env, command
    else:
        env["HUB_DATABASE_URL"] = f"sqlite:///{workdir / 'hub.sqlite3'}"
        hub_cli(env, "db", "upgrade")
        yield env, [sys.executable, "-m", "bench.embedded_server", str(port)]


WORKLOADS = {"baseline": baseline_once, "lifecycle_unchecked": lifecycle_once,
             "lifecycle": lifecycle_once}


def schedule(rounds: int) -> Iterator[tuple[str, int]]:
    """(workload, rounds it is split into): the three workloads in turn, in an order that
    rotates each round (B U L, U L B, L B U, ...), so that none always goes first and a
    change of the machine's load weighs on the baseline as much as on the lifecycles."""
    trio = ("baseline", "lifecycle_unchecked", "lifecycle")
    for round_ in range(rounds):
        turn = round_ % len(trio)
        yield from ((w, rounds) for w in trio[turn:] + trio[:turn])


def measure(name: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every workload on one configuration; one result row per workload."""
    workdir = Path(tempfile.mkdtemp(prefix=f"maillage-bench-{name}-"))
    port, log_path = free_port(), workdir / "server.log"
    rows = []
    try:
        with configuration(name, workdir, args.workers, args.threads, port) as (env, command):
            log(f"[{name}] creating {2 * args.clients} organizations and clients with the CLI")
            accounts = make_accounts(env, args.clients)
            log(f"[{name}] starting {' '.join(Path(c).name for c in command)}")
            with serving(command, env, log_path, port) as base_url:
                partners = connect(base_url, accounts)
                unchecked = [replace(p, sender={**p.sender, **CONSENT_OFF},
                                     receiver={**p.receiver, **CONSENT_OFF}) for p in partners]
                measured: dict[str, Measured] = {}
                warmups: dict[str, Measured] = {}
                for workload, rounds in schedule(args.rounds):
                    once, label = WORKLOADS[workload], f"{name} {workload}"
                    who = unchecked if workload == "lifecycle_unchecked" else partners
                    stretch = args.duration / rounds
                    if workload not in warmups:
                        log(f"[{label}] warm-up {args.warmup:g} s")
                        warmups[workload] = run_workload(base_url, who, once, args.warmup,
                                                         label)
                    log(f"[{label}] {stretch:g} s")
                    start = log_path.stat().st_size
                    measured[workload] = run_workload(base_url, who, once, stretch, label,
                                                      measured.get(workload))
                    measured[workload].log_slices.append((start, log_path.stat().st_size))
                for workload, m in measured.items():
                    row = figures(m, log_path)
                    warmup = figures(warmups[workload], log_path)
                    row.update(config=name, workload=workload, warmup_errors=warmup["errors"])
                    row["error_samples"] += warmup["error_samples"]
                    rows.append(row)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return rows


# --- reporting ------------------------------------------------------------------------------

def checks(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by = {(r["config"], r["workload"]): r for r in rows}
    found = []
    for config in CONFIGS:
        if (config, "lifecycle") not in by:
            continue
        lifecycle = by[config, "lifecycle"]
        for versus, target in (("baseline", LIFECYCLE_SHARE_TARGET),
                               ("lifecycle_unchecked", CONSENT_SHARE_TARGET)):
            other = by[config, versus]["req_per_s"]
            ratio = lifecycle["req_per_s"] / other if other else 0
            found.append({"config": config, "check": f"lifecycle req/s / {versus} req/s",
                          "value": round(ratio, 3), "target": f">= {target:.2f}",
                          "pass": ratio >= target})
        if config == "postgresql":
            found.append({"config": config, "check": "lifecycle p99 ms",
                          "value": lifecycle["p99_ms"], "target": f"< {PG_P99_TARGET_MS:g}",
                          "pass": lifecycle["p99_ms"] < PG_P99_TARGET_MS})
    return found


def report(rows: list[dict[str, Any]], found: list[dict[str, Any]], machine: str) -> None:
    print(machine)
    print(" | ".join(f"{c} = {d}" for c, d in CONFIGS.items()))
    print()
    header = ("config", "workload", "requests", "errors", "req/s", "p50 ms", "p99 ms")
    lines = [header] + [(r["config"], r["workload"], str(r["requests"]),
                         str(r["errors"] + r["warmup_errors"]), f"{r['req_per_s']:.1f}",
                         f"{r['p50_ms']:.2f}", f"{r['p99_ms']:.2f}") for r in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        print(" | ".join(cell.ljust(w) if i < 2 else cell.rjust(w)
                         for i, (cell, w) in enumerate(zip(line, widths, strict=True))))
    print()
    print("Checks:")
    for check in found:
        print(f"  {check['config']}: {check['check']} = {check['value']} "
              f"(target {check['target']}): {'PASS' if check['pass'] else 'MISS'}")
    print()
    print("Where the time goes (p50 / p99 ms, as the client saw it; the hub's own "
          "duration_ms in brackets):")
    for r in rows:
        print(f"  {r['config']} {r['workload']}: machine CPU {r['cpu_busy_pct']:.0f} % busy, "
              f"of which the benchmark's client {r['client_cpu_pct']:.0f} %; "
              f"{r['cpu_steal_pct']:.0f} % stolen by the hypervisor"
              + (f"; req/s by round {', '.join(map(str, r['rounds_req_per_s']))}"
                 if len(r["rounds_req_per_s"]) > 1 else ""))
        for step, s in r["steps"].items():
            server = s["server"] or {"p50_ms": math.nan, "p99_ms": math.nan}
            print(f"    {step:<12} {s['p50_ms']:7.2f} / {s['p99_ms']:7.2f}   "
                  f"[{server['p50_ms']:7.2f} / {server['p99_ms']:7.2f}]")
    for r in rows:
        for sample in r["error_samples"]:
            print(f"ERROR {r['config']} {r['workload']}: {sample}")


def default_workers() -> int:
    return min(2 * (os.cpu_count() or 1) + 1, 9)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=20, help="seconds per workload")
    parser.add_argument("--rounds", type=int, default=2,
                        help="rounds in which the three workloads take turns, "
                             "--duration / --rounds seconds each")
    parser.add_argument("--warmup", type=float, default=3, help="unmeasured seconds before each")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--only", choices=list(CONFIGS))
    parser.add_argument("--workers", type=int, default=default_workers(),
                        help="gunicorn workers (default: 2 * CPUs + 1, at most 9)")
    parser.add_argument("--threads", type=int, default=8,
                        help="threads per gunicorn worker, and waitress threads")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up as on Ctrl-C

    started = datetime.now(UTC)
    memory = subprocess.run(["free", "-h"], capture_output=True, text=True).stdout.split()[7]
    machine = (f"{started:%Y-%m-%d %H:%M} UTC, nproc {os.cpu_count()}, memory {memory}, "
               f"load average {os.getloadavg()[0]:.2f} at start, "
               f"{args.clients} clients, {args.duration:g} s per workload "
               f"(in {args.rounds} rotating rounds), gunicorn "
               f"{args.workers} workers x {args.threads} threads, waitress {args.threads} threads")
    rows = [row for name in CONFIGS if args.only in (None, name) for row in measure(name, args)]
    found = checks(rows)
    report(rows, found, machine)

    results_dir = ROOT / "bench" / "results"
    results_dir.mkdir(exist_ok=True)
    path = results_dir / f"lifecycle-{started:%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps({"machine": machine, "args": vars(args), "results": rows,
                                "checks": found}, indent=2))
    print(f"\nResults written to {path.relative_to(ROOT)}")
    errors = sum(r["errors"] + r["warmup_errors"] for r in rows)
    if errors:
        print(f"FAILED: {errors} requests got an unexpected answer (see ERROR lines above)")
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # the servers and the database are gone by now
        sys.exit(130)
