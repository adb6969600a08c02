"""`hub worker` as a real process: killed with SIGKILL in the middle of a batch and started
again, it loses nothing — every event reaches the endpoint at least once, in order per leg, and
a receiver that deduplicates on `webhook-id` has each exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import func, select

from hub.db import db
from tests.helpers import Network
from tests.receiver import Reply, running_receiver
from webhooks.models import Delivery, DeliveryState

HUB = str(Path(sys.executable).parent / "hub")


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_worker_killed_mid_batch_loses_nothing(app: Flask, network: Network,
                                                 tmp_path: Path) -> None:
    settings = app.config["HUB_SETTINGS"]
    env = {**os.environ, "HUB_DATABASE_URL": settings.database_url, "HUB_ENV": "test",
           "HUB_SECRET_KEY": settings.secret_key, "HUB_WEBHOOK_LEASE_SECONDS": "3",
           "HUB_WEBHOOK_CONCURRENCY": "8"}
    sender, partner = network.partner(), network.partner()
    with running_receiver() as receiver:
        receiver.standing["/kill"] = Reply(204, hang=0.4)  # slow enough to die mid-batch
        endpoint = partner.post("/api/v1/webhook-endpoints", {
            "url": receiver.url_for("/kill"), "event_types": ["referral.*"]}).get_json()
        legs = [sender.refer(partner) for _ in range(12)]
        for leg in legs:
            partner.act(leg["id"], "acknowledge")
        subjects = {f"referrals/{leg['id']}" for leg in legs}

        def delivered() -> int:
            with app.app_context(), db.job_session() as session:
                return session.scalar(select(func.count()).select_from(Delivery).where(
                    Delivery.endpoint_id == uuid.UUID(endpoint["id"]),
                    Delivery.state == DeliveryState.DELIVERED.value)) or 0

        log = (tmp_path / "worker.log").open("wb")
        first = subprocess.Popen([HUB, "worker"], env=env, stdout=log, stderr=log)
        try:
            wait_for(lambda: len(receiver.requests) >= 3, 30, "the first deliveries")
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
            assert delivered() < 2 * len(legs), "killed too late: nothing was in flight"
            second = subprocess.Popen([HUB, "worker"], env=env, stdout=log, stderr=log)
            try:
                wait_for(lambda: delivered() == 2 * len(legs), 60, "every delivery")
            finally:
                second.send_signal(signal.SIGTERM)
                second.wait(timeout=30)
        finally:
            if first.poll() is None:
                first.kill()
            log.close()

    bodies = {}
    arrivals: dict[str, list[str]] = {}
    for request in receiver.requests:
        webhook_id = request.headers["webhook-id"]
        if webhook_id in bodies:
            continue  # the receiver dedupes on webhook-id, as partners are told to
        body = json.loads(request.body)
        bodies[webhook_id] = body
        arrivals.setdefault(body["subject"], []).append(body["type"])
    assert set(arrivals) == subjects
    for subject in subjects:  # each leg's events exactly once, in order
        assert arrivals[subject] == ["referral.sent", "referral.acknowledged"], subject
    assert len(bodies) == 2 * len(legs)
    assert len(receiver.requests) >= len(bodies)  # at least once; resends after the kill
    assert second.returncode == 0, (tmp_path / "worker.log").read_text()[-2000:]
