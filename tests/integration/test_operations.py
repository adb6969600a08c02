"""What operators rely on: probes, metrics, request ids, and the API documentation."""

from __future__ import annotations

import re
from pathlib import Path

from flask import Flask

from hub import create_app
from hub.config import Settings
from tests.helpers import Network


def test_health_and_readiness(app: Flask) -> None:
    client = app.test_client()
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["database"] == "reachable"


def test_not_ready_until_migrations_are_applied(tmp_path: Path) -> None:
    empty = create_app(Settings(env="test", database_url=f"sqlite:///{tmp_path / 'empty.db'}"))
    response = empty.test_client().get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["migrations"]["current"] is None
    assert "hub db upgrade" in body["hint"]


def test_not_ready_when_the_database_is_unreachable() -> None:
    broken = create_app(Settings(
        env="test", database_url="postgresql+psycopg://nobody@127.0.0.1:9/none"))
    assert broken.test_client().get("/readyz").status_code == 503


def test_metrics_count_requests_by_route_and_events_appended(app: Flask,
                                                             network: Network) -> None:
    a, b = network.partner(), network.partner()
    leg = a.refer(b)
    b.act(leg["id"], "acknowledge")
    text = app.test_client().get("/metrics").get_data(as_text=True)
    assert re.search(r'hub_http_requests_total\{method="POST",'
                     r'route="/api/v1/referrals/<uuid:referral_id>/acknowledge",status="200"\} '
                     r'[1-9]', text)
    assert 'hub_http_request_duration_seconds_bucket{' in text
    assert re.search(r'hub_events_appended_total\{type="referral.acknowledged"\} [1-9]', text)


def test_request_id_is_echoed_or_made(app: Flask) -> None:
    client = app.test_client()
    assert client.get("/healthz", headers={"X-Request-Id": "abc-123"}).headers[
        "X-Request-Id"] == "abc-123"
    made = client.get("/healthz", headers={"X-Request-Id": "bad id with spaces"})
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["X-Request-Id"])
    problem = client.get("/api/v1/nothing-here", headers={"X-Request-Id": "req-42"})
    assert problem.get_json()["request_id"] == "req-42"


def test_openapi_document_and_docs_are_served_locally(app: Flask) -> None:
    client = app.test_client()
    spec = client.get("/api/v1/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    paths = spec["paths"]
    for path in ["/api/v1/referrals", "/api/v1/referrals/{referral_id}/forward",
                 "/api/v1/events", "/api/v1/participants/{participant_id}",
                 "/api/v1/organizations"]:
        assert path in paths
    assert paths["/api/v1/referrals/{referral_id}/cancel"]["post"]["security"] == [
        {"oauth2": ["referrals:write"]}]
    assert "clientCredentials" in spec["components"]["securitySchemes"]["oauth2"]["flows"]

    page = client.get("/api/docs").get_data(as_text=True)
    assert "swagger-ui-bundle.js" in page
    assert not re.search(r'(src|href)="https?://', page), "docs must not load remote assets"
    assert "<script>" not in page, "no inline script"
    for asset in re.findall(r'(?:src|href)="([^"]+)"', page):
        assert client.get(asset).status_code == 200, asset
