"""Outbound webhook delivery throughput on PostgreSQL, next to a plain httpx baseline.

The issue's targets, on this 2-core machine: deliveries per second to a local receiver that
answers 200 at once, 10 endpoints, >= 1,000/s sustained on PostgreSQL and >= 50 % of a plain
`httpx` client posting the same bodies to the same receiver; with one of the ten endpoints dead
(timeouts), the other nine keep >= 90 % of their throughput.

Method, in one run and against one receiver:
- receiver: a raw asyncio HTTP/1.1 server in its own process (keep-alive, no framework), that
  answers 200 with an empty body at once, except on /dead/ where it reads the request and never
  answers. Per path it counts requests, distinct webhook-ids, order violations (per ordering
  key, each sequence must follow the previous one) and the arrival time of every request;
- bodies: precomputed ~1.5 KB CloudEvents envelopes like the hub's (a referral with its
  participant); the engine's `render` callback looks them up in a dict: the engine is measured,
  not the hub's rendering;
- baseline: `--baseline-threads` (16) threads sharing one plain `httpx.Client`, posting the
  same bodies to the ten endpoint paths, each request signed with
  `webhooks.signing.signature_headers` as the engine signs each attempt (signing is paid on
  both sides), for `--baseline-seconds`, before the engine workloads and again after them
  (the machine's load drifts): the engine is compared with the mean of the two;
- sender (information): the same loop through the engine's own HTTP layer
  (`webhooks.sender.attempt` over `webhooks.sender.guarded_client`), no database: it splits the
  gap between the baseline and the engine into HTTP layer and database/bookkeeping;
- engine: a fresh PostgreSQL database (fsync on, `scripts/test-postgres.sh`) holding the
  engine's tables only (`webhooks.models.metadata`); ten endpoints; `--keys` x `--per-key`
  messages enqueued with `webhooks.queue.enqueue_many` (sequence 1 of every key, then sequence
  2, ... as a hub would append them), then VACUUM ANALYZE; then each of `--dispatchers`
  processes runs one `Dispatcher.run_forever` with the hub worker's settings (`--concurrency`
  256 requests in flight, idle_sleep 0.2 s) and `sender.guarded_client` (`--timeout` 2 s
  instead of the hub's 15 s) until every healthy delivery is recorded. Rate = healthy
  deliveries / (last arrival - first arrival) at the receiver; the 10-90 % rate is printed
  beside it.
  - healthy: ten endpoints answering 200;
  - one dead: nine healthy endpoints and one on /dead/ (each attempt waits for the timeout).
    Compared per endpoint: a healthy endpoint's deliveries/s against the healthy workload's.
  Where the time goes: CPU per delivery of the dispatchers and of their PostgreSQL backends,
  and time per step of the dispatchers' main threads.
Checks (exit status 1 if any fails; a missed target is reported, exit status 0): every healthy
delivery reached the receiver exactly once (count and digest of webhook-ids per endpoint), in
order per ordering key, is recorded delivered after one attempt; the dead endpoint got
attempts and no delivery.
"""

from __future__ import annotations

import sys
from pathlib import Path

# `python bench/webhooks.py` puts bench/ first on sys.path, where this file would shadow the
# `webhooks` package it measures.
ROOT = Path(__file__).resolve().parent.parent
if sys.path and Path(sys.path[0] or ".").resolve() == ROOT / "bench":
    sys.path[0] = str(ROOT)

import argparse  # noqa: E402
import asyncio  # noqa: E402
import hashlib  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import multiprocessing as mp  # noqa: E402
import os  # noqa: E402
import secrets  # noqa: E402
import shlex  # noqa: E402
import socket  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections import Counter, defaultdict  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from contextlib import AbstractContextManager, contextmanager  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402
from typing import Any  # noqa: E402

import httpx  # noqa: E402
from prometheus_client import REGISTRY  # noqa: E402
from sqlalchemy import create_engine, func, select, text  # noqa: E402
from sqlalchemy.orm import Session, sessionmaker  # noqa: E402

from bench.databases import bench_server, fresh_postgresql_database  # noqa: E402
from webhooks.dispatcher import Dispatcher  # noqa: E402
from webhooks.endpoints import create_endpoint  # noqa: E402
from webhooks.models import Attempt, Delivery, metadata  # noqa: E402
from webhooks.queue import Message, enqueue_many  # noqa: E402
from webhooks.sender import (  # noqa: E402
    USER_AGENT,
    GuardedClient,
    Outcome,
    attempt,
    guarded_client,
)
from webhooks.signing import new_secret, signature_headers  # noqa: E402

# Its own PostgreSQL server, fsync on: commits cost what they cost in production.  Its port
# and data directory can be moved with HUB_BENCH_PG_PORT / HUB_BENCH_PG_DIR (several people
# may run benchmarks on one machine).
PG_PORT, PG_DIR = bench_server("54332", "/tmp/maillage-pg-webhooks-perf")
ENDPOINTS = 10
DEAD_PREFIX = "/dead/"
RATE_TARGET = 1000.0
BASELINE_SHARE_TARGET = 0.5
DEAD_SHARE_TARGET = 0.9
ENQUEUE_CHUNK = 1000  # messages per enqueue_many transaction
EVENT_TYPES = ("referral.sent", "referral.acknowledged", "referral.accepted",
               "referral.started", "referral.completed")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def now_utc() -> datetime:
    return datetime.now(UTC)


# --- messages and bodies ------------------------------------------------------------------------

def message_id(tag: str, key: int, sequence: int) -> str:
    """`<tag>.<key>.<sequence>`: the receiver reads the ordering key and sequence back."""
    return f"{tag}.{key}.{sequence}"


def messages(tag: str, keys: int, per_key: int) -> list[Message]:
    """Sequence 1 of every key, then sequence 2, ...: the order a hub appends lifecycles in."""
    return [
        Message(message_id(tag, key, sequence), EVENT_TYPES[(sequence - 1) % len(EVENT_TYPES)],
                f"referrals/{key}", sequence)
        for sequence in range(1, per_key + 1)
        for key in range(keys)
    ]


def body(message: Message) -> bytes:
    """A CloudEvents envelope shaped like the hub's (a referral leg and its participant)."""
    key = message.ordering_key
    ident = {name: str(uuid.uuid5(uuid.NAMESPACE_URL, f"{key}/{name}"))
             for name in ("referral", "chain", "participant", "from", "to")}
    stamp = "2026-11-23T07:04:05.123Z"
    referral = {
        "id": ident["referral"], "chain_id": ident["chain"],
        "participant_id": ident["participant"], "from_organization_id": ident["from"],
        "to_organization_id": ident["to"], "pathway": "employment", "stage": "orientation",
        "priority": "normal", "status": message.event_type.removeprefix("referral."),
        "version": message.sequence, "forwarded_from": None, "forwarded_to": None,
        "decline_reason": None, "outcome": None, "cancel_reason": None,
        "created_at": stamp, "updated_at": stamp,
        "deadlines": {"acknowledge_by": "2026-11-25T07:04:05Z",
                      "decide_by": "2026-11-30T07:04:05Z", "start_by": "2026-12-14T07:04:05Z"},
        "participant": {
            "id": ident["participant"], "organization_id": ident["from"],
            "given_name": "Camille", "family_name": "Durand-Lefèvre", "preferred_language": "fr",
            "email": "camille.durand-lefevre@example.org", "phone": "+33 6 12 34 56 78",
            "birth_year": 1994, "region": "06", "created_at": stamp, "redacted": False,
        },
        "reason_for_referral": "Recherche d'un emploi dans la logistique après une formation "
                               "de cariste ; disponible immédiatement, mobilité réduite le soir.",
        "needs": ["employment", "mobility", "training", "childcare"],
    }
    envelope = {
        "specversion": "1.0", "id": message.message_id,
        "source": "https://maillage.example.org/organizations/" + ident["from"],
        "type": message.event_type, "subject": key, "time": stamp,
        "datacontenttype": "application/json", "sequence": message.sequence,
        "data": {"referral": referral},
    }
    return json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode()


def bodies(tag: str, keys: int, per_key: int) -> dict[str, bytes]:
    return {m.message_id: body(m) for m in messages(tag, keys, per_key)}


def ids_digest(ids: Iterator[str] | list[str] | set[str]) -> str:
    return hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()


# --- the receiver (its own process) -------------------------------------------------------------

OK_RESPONSE = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"


@dataclass
class PathTally:
    requests: int = 0
    ids: set[str] = field(default_factory=set)
    last_sequence: dict[str, int] = field(default_factory=dict)
    order_violations: int = 0
    times: list[float] = field(default_factory=list)  # time.monotonic(), same clock for all

    def add(self, webhook_id: str) -> None:
        self.requests += 1
        self.times.append(time.monotonic())
        self.ids.add(webhook_id)
        _tag, key, sequence = webhook_id.rsplit(".", 2)
        if int(sequence) != self.last_sequence.get(key, 0) + 1:
            self.order_violations += 1
        self.last_sequence[key] = int(sequence)

    def summary(self, with_times: bool) -> dict[str, Any]:
        found: dict[str, Any] = {"requests": self.requests, "distinct": len(self.ids),
                                 "order_violations": self.order_violations}
        if with_times:
            found["digest"] = ids_digest(self.ids)
            found["times"] = self.times
        return found


class ReceiverState:
    def __init__(self) -> None:
        self.paths: dict[str, PathTally] = defaultdict(PathTally)

    def control(self, path: str) -> bytes:
        if path == "/_reset":
            self.paths.clear()
            payload: dict[str, Any] = {}
        else:
            with_times = path.endswith("?times=1")
            payload = {"paths": {p: t.summary(with_times) for p, t in self.paths.items()}}
        data = json.dumps(payload).encode()
        head = f"HTTP/1.1 200 OK\r\ncontent-length: {len(data)}\r\n\r\n"
        return head.encode() + data


class ReceiverProtocol(asyncio.Protocol):
    """HTTP/1.1 with keep-alive and content-length bodies: all httpx sends here."""

    def __init__(self, state: ReceiverState) -> None:
        self.state = state
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            size = end + 4 + int(headers.get("content-length", "0"))
            if len(self.buffer) < size:
                return
            del self.buffer[:size]
            self.handle(lines[0].split(" ")[1], headers)

    def handle(self, path: str, headers: dict[str, str]) -> None:
        assert self.transport is not None
        if path.startswith("/_"):
            self.transport.write(self.state.control(path))
            return
        self.state.paths[path].add(headers.get("webhook-id", "?.0.0"))
        if not path.startswith(DEAD_PREFIX):  # the dead endpoint never answers
            self.transport.write(OK_RESPONSE)


def serve_receiver(port: int) -> None:
    """The receiver process's main function."""
    async def main() -> None:
        state = ReceiverState()
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: ReceiverProtocol(state), "127.0.0.1", port,
                                          backlog=1024)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def receiver() -> Iterator[str]:
    """Start the receiver process; yield its base URL; stop it at the end."""
    port = free_port()
    process = mp.get_context("spawn").Process(target=serve_receiver, args=(port,), daemon=True)
    process.start()
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(base_url + "/_reset", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or not process.is_alive():
                    raise RuntimeError("the receiver did not start") from None
                time.sleep(0.1)
        yield base_url
    finally:
        process.terminate()
        process.join(5)


def receiver_call(base_url: str, what: str) -> dict[str, Any]:
    response = httpx.get(base_url + what, timeout=30)
    response.raise_for_status()
    return response.json()  # type: ignore[no-any-return]


# --- measuring CPU ------------------------------------------------------------------------------

def machine_ticks() -> tuple[int, int, int]:
    """(total, idle + iowait, steal) jiffies of the whole machine, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(values[:8]), values[3] + values[4], values[7]


def backend_ticks(database: str) -> int:
    """CPU jiffies (user + system) of the PostgreSQL backends serving `database`."""
    total = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if f" {database} " not in (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(
                    errors="replace"):
                continue
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total


@dataclass
class CpuWindow:
    """Machine and PostgreSQL CPU over a stretch of time, as % of one core."""

    database: str
    started: float = 0.0
    machine: tuple[int, int, int] = (0, 0, 0)
    backends: int = 0

    def start(self) -> None:
        self.started = time.monotonic()
        self.machine = machine_ticks()
        self.backends = backend_ticks(self.database) if self.database else 0

    def stop(self) -> dict[str, float]:
        wall = time.monotonic() - self.started
        total, idle, steal = (b - a for a, b in zip(self.machine, machine_ticks(), strict=True))
        hz = os.sysconf("SC_CLK_TCK")
        found = {"machine_busy_pct": 100 * (total - idle) / total if total else 0.0,
                 "steal_pct": 100 * steal / total if total else 0.0, "window_s": wall}
        if self.database:
            found["postgres_cpu_pct"] = 100 * (backend_ticks(self.database) - self.backends) / (
                hz * wall)
        return found


# --- HTTP-only loops: the baseline and the engine's sender --------------------------------------

def request_plan(base_url: str, table: dict[str, bytes]) -> list[tuple[str, str, bytes]]:
    """(url, webhook-id, body) for every message to every endpoint, message by message."""
    return [(f"{base_url}/ep/{n}", message, payload)
            for message, payload in table.items() for n in range(ENDPOINTS)]


def post_plain(client: httpx.Client, url: str, message: str, payload: bytes,
               secret: list[str]) -> bool:
    headers = {"content-type": "application/json", "user-agent": USER_AGENT,
               "accept-encoding": "identity",
               **signature_headers(secret, message, now_utc(), payload)}
    return client.post(url, content=payload, headers=headers).status_code == 200


def post_engine_sender(client: GuardedClient, url: str, message: str, payload: bytes,
                       secret: list[str]) -> bool:
    result = attempt(client, url, secrets=secret, message_id=message, body=payload,
                     now=now_utc())
    return result.outcome is Outcome.DELIVERED


def run_http_loop(plan: list[tuple[str, str, bytes]], client: Any,
                  post: Callable[..., bool], threads: int, seconds: float) -> dict[str, Any]:
    """`threads` threads share `client` and go through `plan` for `seconds`: requests/s."""
    stop = threading.Event()
    counts = Counter[str]()
    samples: list[str] = []
    lock = threading.Lock()
    secret = [new_secret()]

    def loop(offset: int) -> None:
        done = errors = 0
        for url, message, payload in itertools.islice(itertools.cycle(plan), offset, None,
                                                      threads):
            if stop.is_set():
                break
            try:
                ok = post(client, url, message, payload, secret)
            except httpx.HTTPError as error:
                ok = False
                samples.append(f"{url}: {error!r}")
            done += ok
            errors += not ok
        with lock:
            counts.update(done=done, errors=errors)

    workers = [threading.Thread(target=loop, args=(n,)) for n in range(threads)]
    cpu = time.process_time()
    started = time.monotonic()
    for worker in workers:
        worker.start()
    time.sleep(seconds)
    stop.set()
    for worker in workers:
        worker.join()
    wall = time.monotonic() - started
    return {"requests": counts["done"], "errors": counts["errors"], "error_samples": samples[:3],
            "rate": counts["done"] / wall, "seconds": wall, "threads": threads,
            "client_cpu_pct": 100 * (time.process_time() - cpu) / wall,
            "client_ms_per_request": 1000 * (time.process_time() - cpu) / max(counts["done"], 1)}


def measure_http(name: str, base_url: str, table: dict[str, bytes], args: argparse.Namespace
                 ) -> dict[str, Any]:
    plan = request_plan(base_url, table)
    if name.startswith("baseline"):
        client = httpx.Client(timeout=args.timeout, trust_env=False)
        post: Callable[..., bool] = post_plain
    else:
        client = guarded_client(allow_loopback=True, timeout=args.timeout)
        post = post_engine_sender
    receiver_call(base_url, "/_reset")
    cpu = CpuWindow("")
    cpu.start()
    with client:
        found = run_http_loop(plan, client, post, args.baseline_threads, args.baseline_seconds)
    found.update(cpu.stop())
    log(f"  {name}: {found['rate']:.0f} requests/s, {found['errors']} errors")
    return {"workload": name, **found}


# --- PostgreSQL ---------------------------------------------------------------------------------

def postgresql_database() -> AbstractContextManager[str]:
    """A fresh database on the benchmark's PostgreSQL server (fsync on), dropped at the end."""
    return fresh_postgresql_database("webhooks_bench", port=PG_PORT, directory=PG_DIR)


def prepare_queue(db_url: str, base_url: str, tag: str, keys: int, per_key: int, dead: bool
                  ) -> dict[str, str]:
    """Empty tables, ten endpoints (the last one dead if `dead`), every message enqueued,
    VACUUM ANALYZE; returns the endpoints' receiver paths by endpoint id."""
    engine = create_engine(db_url)
    metadata.drop_all(engine)
    metadata.create_all(engine)
    paths: dict[str, str] = {}
    owner = uuid.uuid4()
    with Session(engine) as session, session.begin():
        for n in range(ENDPOINTS):
            path = f"{DEAD_PREFIX}{n}" if dead and n == ENDPOINTS - 1 else f"/ep/{n}"
            endpoint, _ = create_endpoint(session, owner_id=owner, url=base_url + path,
                                          event_types=["referral.*"], allow_loopback_http=True,
                                          now=now_utc())
            paths[str(endpoint.id)] = path
    queued = messages(tag, keys, per_key)
    started = time.monotonic()
    for start in range(0, len(queued), ENQUEUE_CHUNK):
        with Session(engine) as session, session.begin():
            enqueue_many(session, queued[start:start + ENQUEUE_CHUNK], now_utc())
    log(f"  enqueued {len(queued)} messages x {ENDPOINTS} endpoints in "
        f"{time.monotonic() - started:.1f} s")
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        for table in metadata.sorted_tables:
            connection.execute(text(f"VACUUM ANALYZE {table.name}"))
    engine.dispose()
    return paths


def recorded(db_url: str) -> dict[str, dict[str, int]]:
    """Per endpoint id: deliveries by state, their attempts, and the attempt rows."""
    engine = create_engine(db_url)
    found: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    with Session(engine) as session:
        for endpoint_id, state, count, attempts in session.execute(
                select(Delivery.endpoint_id, Delivery.state, func.count(),
                       func.sum(Delivery.attempts))
                .group_by(Delivery.endpoint_id, Delivery.state)):
            found[str(endpoint_id)][state] += count
            found[str(endpoint_id)]["attempts"] += int(attempts)
        for endpoint_id, count in session.execute(
                select(Delivery.endpoint_id, func.count()).join(Attempt)
                .group_by(Delivery.endpoint_id)):
            found[str(endpoint_id)]["attempt_rows"] += count
        # Failed attempts by error (e.g. "timeout after 2 s"), to tell a retry from a bug.
        for endpoint_id, error, count in session.execute(
                select(Delivery.endpoint_id, Attempt.error, func.count()).join(Attempt)
                .where(Attempt.outcome != Outcome.DELIVERED.value)
                .group_by(Delivery.endpoint_id, Attempt.error)):
            found[str(endpoint_id)][f"failed: {error}"] += count
    engine.dispose()
    return found


def pending_healthy(db_url: str, healthy: list[str]) -> int:
    engine = create_engine(db_url)
    with Session(engine) as session:
        count = session.scalar(select(func.count()).select_from(Delivery).where(
            Delivery.state == "pending",
            Delivery.endpoint_id.in_([uuid.UUID(e) for e in healthy])))
    engine.dispose()
    return int(count or 0)


# --- the engine (dispatcher processes) ----------------------------------------------------------

class TimedDispatcher(Dispatcher):
    """A Dispatcher that adds up where its main thread's time goes (turns: record + claim +
    load; render + hand over; results recorded while waiting) and how many rows each step
    handled. Measurement only: every call goes
    to the engine's own method."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seconds: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()
        self.rows: Counter[str] = Counter()

    def _turn(self) -> int:
        started = time.perf_counter()
        rendering = self.seconds["start"]
        claimed = super()._turn()
        # Without the render and hand-over that _start adds up itself.
        self.note("turn", started + self.seconds["start"] - rendering, claimed)
        return claimed

    def _start(self, rows: Any) -> None:
        started = time.perf_counter()
        super()._start(rows)
        if rows:
            self.note("start", started, len(rows))

    def _collect(self, timeout: float | None) -> int:
        started = time.perf_counter()
        recorded = super()._collect(timeout)
        if recorded:
            self.note("collect", started, recorded)
        return recorded

    def note(self, step: str, started: float, rows: int) -> None:
        self.seconds[step] += time.perf_counter() - started
        self.calls[step] += 1
        self.rows[step] += rows


@dataclass(frozen=True)
class EngineOptions:
    concurrency: int
    per_endpoint: int | None
    batch_size: int
    timeout: float
    idle_sleep: float


def dispatch(db_url: str, tag: str, keys: int, per_key: int, options: EngineOptions, index: int,
             ready: Any, go: Any, stop: Any, results: Any) -> None:
    """A dispatcher process's main function: set up, wait for `go`, run until `stop`."""
    table = bodies(tag, keys, per_key)

    def render(_session: Session, deliveries: list[Delivery]) -> dict[int, bytes | None]:
        return {d.id: table.get(d.message_id) for d in deliveries}

    engine = create_engine(db_url, pool_size=2, max_overflow=2,
                           connect_args={"application_name": f"bench-dispatcher-{index}"})
    client = guarded_client(allow_loopback=True, timeout=options.timeout)
    dispatcher = TimedDispatcher(
        sessionmaker(engine, expire_on_commit=False), render=render, client=client,
        clock=now_utc, worker_id=f"bench-{index}-{os.getpid()}", batch_size=options.batch_size,
        concurrency=options.concurrency, per_endpoint=options.per_endpoint,
        lease=timedelta(seconds=60))
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))
    ready.put(index)
    go.wait()
    cpu = time.process_time()
    started = time.monotonic()
    profile_dir = os.environ.get("WEBHOOKS_BENCH_PROFILE")
    if profile_dir:  # cProfile of the main thread (claim, render, record), one file per process
        import cProfile
        profiler = cProfile.Profile()
        profiler.runcall(dispatcher.run_forever, stop, idle_sleep=options.idle_sleep)
        profiler.dump_stats(f"{profile_dir}/dispatcher-{index}-{os.getpid()}.prof")
    else:
        dispatcher.run_forever(stop, idle_sleep=options.idle_sleep)
    wall = time.monotonic() - started
    dispatcher.close()
    client.close()
    engine.dispose()
    results.put({
        "index": index, "wall_s": wall, "cpu_s": time.process_time() - cpu,
        "delivered": REGISTRY.get_sample_value("webhook_deliveries_total",
                                               {"outcome": "delivered"}) or 0,
        "retry": REGISTRY.get_sample_value("webhook_deliveries_total",
                                           {"outcome": "retry"}) or 0,
        "seconds": dict(dispatcher.seconds), "calls": dict(dispatcher.calls),
        "rows": dict(dispatcher.rows)})


def wait_for_receiver(base_url: str, healthy_paths: list[str], expected: int,
                      stall_seconds: float = 60.0) -> bool:
    """Until every healthy path got `expected` distinct ids; False if progress stalls."""
    last, last_change = -1, time.monotonic()
    while True:
        paths = receiver_call(base_url, "/_stats")["paths"]
        got = sum(paths.get(p, {}).get("distinct", 0) for p in healthy_paths)
        if got >= expected * len(healthy_paths):
            return True
        if got != last:
            last, last_change = got, time.monotonic()
        elif time.monotonic() - last_change > stall_seconds:
            return False
        time.sleep(0.25)


def wait_for_recording(db_url: str, healthy: list[str], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while pending_healthy(db_url, healthy) and time.monotonic() < deadline:
        time.sleep(0.1)


def rate(times: list[float], low: float = 0.0, high: float = 1.0) -> float:
    """Arrivals per second between the `low` and `high` quantiles of the arrival times."""
    times = sorted(times)
    first, last = int(low * (len(times) - 1)), int(high * (len(times) - 1))
    span = times[last] - times[first]
    return (last - first) / span if span > 0 else 0.0


@contextmanager
def dispatcher_processes(db_url: str, tag: str, args: argparse.Namespace, count: int
                         ) -> Iterator[tuple[Any, Any, Any]]:
    """Start `count` dispatcher processes and wait until they are ready; yields the events
    `go` and `stop` and the results queue. Stragglers are killed at the end."""
    options = EngineOptions(args.concurrency, args.per_endpoint, args.batch_size, args.timeout,
                            args.idle_sleep)
    context = mp.get_context("spawn")
    ready, results, go, stop = context.Queue(), context.Queue(), context.Event(), context.Event()
    processes = [context.Process(target=dispatch, daemon=True,
                                 args=(db_url, tag, args.keys, args.per_key, options, n, ready,
                                       go, stop, results))
                 for n in range(count)]
    for process in processes:
        process.start()
    try:
        for _ in processes:
            ready.get(timeout=120)
        yield go, stop, results
    finally:
        stop.set()
        go.set()
        for process in processes:
            process.join(30)
            if process.is_alive():
                process.kill()


def run_engine(db_url: str, database: str, base_url: str, args: argparse.Namespace,
               dispatchers: int, dead: bool) -> dict[str, Any]:
    """One engine workload: enqueue, start the dispatchers, wait, stop, measure, check."""
    name = f"engine, {dispatchers} process{'es' if dispatchers > 1 else ''}, " + (
        "9 healthy + 1 dead" if dead else "10 healthy")
    log(f"{name}:")
    tag = secrets.token_hex(3)
    paths = prepare_queue(db_url, base_url, tag, args.keys, args.per_key, dead)
    healthy = [e for e, p in paths.items() if not p.startswith(DEAD_PREFIX)]
    expected = args.keys * args.per_key
    found: dict[str, Any] = {"workload": name, "dispatchers": dispatchers, "dead": dead}
    with dispatcher_processes(db_url, tag, args, dispatchers) as (go, stop, results):
        receiver_call(base_url, "/_reset")
        cpu = CpuWindow(database)
        cpu.start()
        go.set()
        found["complete"] = wait_for_receiver(base_url, [paths[e] for e in healthy], expected)
        wait_for_recording(db_url, healthy)
        found.update(cpu.stop())
        stats = receiver_call(base_url, "/_stats?times=1")
        stop.set()
        workers = [results.get(timeout=120) for _ in range(dispatchers)]
    found["dispatcher_cpu_pct"] = [100 * w["cpu_s"] / w["wall_s"] for w in workers]
    found["main_thread"] = main_thread_breakdown(workers)
    found.update(engine_rates(stats["paths"], [paths[e] for e in healthy]))
    found["dead_requests"] = sum(t["requests"] for p, t in stats["paths"].items()
                                 if p.startswith(DEAD_PREFIX))
    if found["delivered"]:
        found["client_ms_per_request"] = 1000 * sum(w["cpu_s"] for w in workers) / found[
            "delivered"]
        found["postgres_ms_per_request"] = (10 * found["postgres_cpu_pct"] * found["window_s"]
                                            / found["delivered"])
    found["checks"] = engine_checks(stats["paths"], recorded(db_url), paths, tag, args)
    log(f"  {found['rate']:.0f} deliveries/s ({found['per_endpoint_rate']:.0f} per healthy "
        f"endpoint), {found['delivered']} delivered in {found['seconds']:.1f} s"
        + (f"; {found['dead_requests']} attempts on the dead endpoint" if dead else ""))
    return found


def main_thread_breakdown(workers: list[dict[str, Any]]) -> dict[str, Any]:
    """Seconds, calls and rows per step of the dispatchers' main threads, added up."""
    found: dict[str, Any] = {"wall_s": round(sum(w["wall_s"] for w in workers), 1)}
    for step in ("turn", "start", "collect"):
        calls = sum(w["calls"].get(step, 0) for w in workers)
        seconds = sum(w["seconds"].get(step, 0.0) for w in workers)
        rows = sum(w["rows"].get(step, 0) for w in workers)
        found[step] = {"seconds": round(seconds, 1), "calls": calls,
                       "ms_per_call": round(1000 * seconds / calls, 2) if calls else 0.0,
                       "rows_per_call": round(rows / calls, 1) if calls else 0.0}
    return found


def engine_rates(stats: dict[str, Any], healthy_paths: list[str]) -> dict[str, Any]:
    times = [t for p in healthy_paths for t in stats.get(p, {}).get("times", [])]
    if len(times) < 2:
        return {"rate": 0.0, "rate_10_90": 0.0, "per_endpoint_rate": 0.0, "delivered": 0,
                "seconds": 0.0}
    found = {"delivered": len(times), "seconds": max(times) - min(times),
             "rate": rate(times), "rate_10_90": rate(times, 0.1, 0.9)}
    found["per_endpoint_rate"] = found["rate"] / len(healthy_paths)
    found["per_endpoint_rates"] = [round(rate(stats[p]["times"]), 1) for p in healthy_paths]
    return found


def engine_checks(stats: dict[str, Any], database: dict[str, dict[str, int]],
                  paths: dict[str, str], tag: str, args: argparse.Namespace) -> list[str]:
    """What went wrong, if anything: one line per problem."""
    expected = args.keys * args.per_key
    digest = ids_digest(m.message_id for m in messages(tag, args.keys, args.per_key))
    problems = []
    for endpoint_id, path in paths.items():
        got, rows = stats.get(path, {}), database.get(endpoint_id, {})
        if path.startswith(DEAD_PREFIX):
            if rows.get("delivered") or not got.get("requests") or not rows.get("attempts"):
                problems.append(f"{path}: dead endpoint, {got.get('requests', 0)} requests, "
                                f"{dict(rows)} in the database")
            continue
        if got.get("requests") != expected or got.get("distinct") != expected:
            problems.append(f"{path}: {got.get('requests', 0)} requests, "
                            f"{got.get('distinct', 0)} distinct webhook-ids, "
                            f"expected {expected} each")
        elif got.get("digest") != digest:
            problems.append(f"{path}: the webhook-ids received are not the ones enqueued")
        if got.get("order_violations"):
            problems.append(f"{path}: {got['order_violations']} deliveries out of order")
        if (rows.get("delivered") != expected or rows.get("attempts") != expected
                or rows.get("attempt_rows") != expected):
            problems.append(f"{path}: database holds {dict(rows)}, expected {expected} "
                            "delivered after one attempt each")
    for problem in problems:
        log(f"  CHECK FAILED {problem}")
    return problems


# --- report -------------------------------------------------------------------------------------

def targets(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's figures against their targets, per dispatcher configuration."""
    # Measured before and after the engine workloads: the machine's load drifts meanwhile.
    baselines = [r["rate"] for r in rows if r["workload"].startswith("baseline")]
    baseline = sum(baselines) / len(baselines)
    found = []
    for healthy in (r for r in rows if "dead" in r and not r["dead"]):
        label = f"{healthy['dispatchers']} dispatcher process(es)"
        found.append({"figure": f"{label}: deliveries/s, 10 healthy endpoints",
                      "value": f"{healthy['rate']:.0f}", "target": f">= {RATE_TARGET:.0f}",
                      "pass": healthy["rate"] >= RATE_TARGET})
        share = healthy["rate"] / baseline if baseline else 0.0
        found.append({"figure": f"{label}: engine / baseline (mean {baseline:.0f}/s)",
                      "value": f"{100 * share:.0f} %",
                      "target": f">= {100 * BASELINE_SHARE_TARGET:.0f} %",
                      "pass": share >= BASELINE_SHARE_TARGET})
        dead = next((r for r in rows if r.get("dead") and
                     r["dispatchers"] == healthy["dispatchers"]), None)
        if dead is not None:
            kept = dead["per_endpoint_rate"] / healthy["per_endpoint_rate"] \
                if healthy["per_endpoint_rate"] else 0.0
            found.append({"figure": f"{label}: per healthy endpoint with 1 dead "
                                    f"({dead['per_endpoint_rate']:.0f}/s vs "
                                    f"{healthy['per_endpoint_rate']:.0f}/s)",
                          "value": f"{100 * kept:.0f} %",
                          "target": f">= {100 * DEAD_SHARE_TARGET:.0f} %",
                          "pass": kept >= DEAD_SHARE_TARGET})
    return found


def table(header: tuple[str, ...], lines: list[tuple[str, ...]]) -> None:
    widths = [max(len(line[i]) for line in [header, *lines]) for i in range(len(header))]
    for line in [header, *lines]:
        print(" | ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                         for i, (cell, w) in enumerate(zip(line, widths, strict=True))))


def report(machine: str, rows: list[dict[str, Any]], found: list[dict[str, Any]]) -> None:
    print(machine)
    print()
    table(("workload", "requests", "req/s", "10-90% /s", "per endpoint /s", "seconds",
           "client CPU %", "client CPU ms/req", "postgres CPU ms/req", "machine busy %"),
          [(r["workload"], str(r.get("delivered", r.get("requests"))), f"{r['rate']:.0f}",
            f"{r['rate_10_90']:.0f}" if "rate_10_90" in r else "-",
            f"{r['per_endpoint_rate']:.0f}" if "per_endpoint_rate" in r else "-",
            f"{r['seconds']:.1f}",
            "+".join(f"{c:.0f}" for c in r.get("dispatcher_cpu_pct", [r.get("client_cpu_pct", 0)])),
            f"{r.get('client_ms_per_request', 0):.2f}",
            f"{r['postgres_ms_per_request']:.2f}" if "postgres_ms_per_request" in r else "-",
            f"{r['machine_busy_pct']:.0f}") for r in rows])
    print(f"(client CPU %: of one core, the baseline's process or each dispatcher process; "
          f"machine busy %: all {os.cpu_count()} cores, whatever runs on them)")
    print()
    table(("figure", "value", "target", "verdict"),
          [(f["figure"], f["value"], f["target"], "PASS" if f["pass"] else "MISS")
           for f in found])
    print()
    print("Dispatcher main threads, all processes: turn = one transaction recording results, "
          "claiming and loading (rows: claimed); start = render and hand over; collect = "
          "results recorded while waiting (rows: results):")
    for r in rows:
        if "main_thread" in r:
            steps = r["main_thread"]
            print(f"  {r['workload']}: {steps['wall_s']} s of wall time; " + "; ".join(
                f"{s} {steps[s]['seconds']} s in {steps[s]['calls']} calls "
                f"({steps[s]['ms_per_call']} ms, {steps[s]['rows_per_call']} rows each)"
                for s in ("turn", "start", "collect")))
            if r["dead"]:
                print(f"    dead endpoint: {r['dead_requests']} attempts, each waiting for the "
                      "client timeout")
    print()
    problems = [p for r in rows for p in r.get("checks", [])]
    complete = all(r.get("complete", True) for r in rows)
    print("Checks: " + ("every healthy delivery reached the receiver exactly once, in order per "
                        "ordering key, recorded delivered after one attempt; the dead endpoint "
                        "got attempts and no delivery: OK" if not problems and complete
                        else "FAILED"))
    for problem in problems:
        print(f"  FAILED: {problem}")
    if not complete:
        print("  FAILED: deliveries stopped arriving before every message was delivered")
    for r in rows:
        if r.get("errors"):
            print(f"  note: {r['workload']}: {r['errors']} requests failed (not counted), "
                  f"e.g. {'; '.join(r['error_samples'])}")


def machine_line(args: argparse.Namespace, started: datetime) -> str:
    executable = Path(sys.executable)
    if executable.is_relative_to(ROOT):
        executable = executable.relative_to(ROOT)
    command = shlex.join([str(executable), "bench/webhooks.py", *sys.argv[1:]])
    return (f"{started:%Y-%m-%d %H:%M} UTC, nproc {os.cpu_count()}, load average "
            f"{os.getloadavg()[0]:.2f} at start; command: {command}\n"
            f"{args.keys} keys x {args.per_key} messages x {ENDPOINTS} endpoints per engine "
            f"workload; baseline and sender: {args.baseline_threads} threads sharing one client; "
            f"dispatchers: concurrency {args.concurrency} requests in flight, per_endpoint "
            f"{args.per_endpoint or max(1, args.concurrency // 4)}, batch_size {args.batch_size}, "
            f"idle_sleep {args.idle_sleep:g} s; client timeout {args.timeout:g} s (hub: 15 s); "
            "bodies precomputed (render is a dict lookup: the engine is measured, not the "
            "hub's rendering); every request signed, baseline included")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=500, help="ordering keys")
    parser.add_argument("--per-key", type=int, default=2, help="messages per ordering key")
    parser.add_argument("--dispatchers", type=int, nargs="+", default=[1, 2],
                        help="dispatcher process counts to measure, in turn")
    parser.add_argument("--concurrency", type=int, default=256,
                        help="requests in flight per dispatcher (default: the hub's)")
    parser.add_argument("--baseline-threads", type=int, default=16,
                        help="threads of the baseline and sender loops")
    parser.add_argument("--per-endpoint", type=int, default=None,
                        help="requests in flight per endpoint (default: concurrency // 4)")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--idle-sleep", type=float, default=0.2, help="the hub worker's")
    parser.add_argument("--timeout", type=float, default=2.0, help="HTTP client timeout, s")
    parser.add_argument("--baseline-seconds", type=float, default=15.0)
    parser.add_argument("--no-dead", action="store_true", help="skip the dead-endpoint workload")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    started = now_utc()
    machine = machine_line(args, started)
    log(machine)
    rows: list[dict[str, Any]] = []
    with receiver() as base_url, postgresql_database() as db_url:
        table_ = bodies("http", 1000, 1)
        sizes = sorted(len(b) for b in table_.values())
        log(f"bodies: {sizes[0]}-{sizes[-1]} bytes")
        for name in ("baseline", "sender"):
            rows.append(measure_http(name, base_url, table_, args))
        database = db_url.rsplit("/", 1)[1]
        for dispatchers in args.dispatchers:
            for dead in (False,) if args.no_dead else (False, True):
                rows.append(run_engine(db_url, database, base_url, args, dispatchers, dead))
        rows.append(measure_http("baseline, after", base_url, table_, args))
    found = targets(rows)
    report(machine, rows, found)
    results_dir = ROOT / "bench" / "results"
    results_dir.mkdir(exist_ok=True)
    path = results_dir / f"webhooks-{started:%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps({"machine": machine, "args": vars(args), "results": rows,
                                "targets": found}, indent=2, default=str))
    print(f"\nResults written to {path.relative_to(ROOT)}")
    failed = any(r.get("checks") for r in rows) or not all(r.get("complete", True) for r in rows)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
