"""A partner system reading the hub's exchange formats over real HTTP, with a token from the
token endpoint: the directory as HSDS 3.0 page by page, a leg as a FHIR R4 bundle, its funder
report as CSV."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta

import requests

from tests.fhir_schema import fhir_r4_errors
from tests.helpers import Network, Partner
from tests.hsds_schemas import hsds_errors


def http_session(base_url: str, partner: Partner, scope: str) -> requests.Session:
    answer = requests.post(f"{base_url}/oauth/token", timeout=10,
                           auth=(partner.client_id, partner.client_secret),
                           data={"grant_type": "client_credentials", "scope": scope})
    assert answer.status_code == 200, answer.text
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"
    return session


def test_a_partner_system_reads_hsds_fhir_and_reports(base_url: str, network: Network) -> None:
    sender = network.partner()
    receiver = network.partner(kind="regional_partner", region="01")
    leg = sender.refer(receiver, pathway="settlement")

    directory = http_session(base_url, receiver, "directory:read")
    seen: list[str] = []
    url, query = f"{base_url}/api/v1/directory/hsds", {"limit": 10}
    while True:
        page = directory.get(url, params=query, timeout=10)
        assert page.status_code == 200 and page.headers["Content-Type"] == "application/json"
        body = page.json()
        assert all(hsds_errors(organization) == [] for organization in body["items"])
        seen += [organization["id"] for organization in body["items"]]
        if body["next_cursor"] is None:
            break
        query = {"limit": 10, "cursor": body["next_cursor"]}
    assert {sender.organization_id, receiver.organization_id} <= set(seen)
    assert len(seen) == len(set(seen))
    # The token holds only directory:read: the referral is out of its reach.
    refused = directory.get(f"{base_url}/api/v1/referrals/{leg['id']}/fhir", timeout=10)
    assert refused.status_code == 403
    assert refused.headers["Content-Type"] == "application/problem+json"

    referrals = http_session(base_url, receiver, "referrals:read")
    bundle = referrals.get(f"{base_url}/api/v1/referrals/{leg['id']}/fhir", timeout=10)
    assert bundle.status_code == 200
    assert bundle.headers["Content-Type"] == "application/fhir+json"
    assert fhir_r4_errors(bundle.json()) == []
    assert bundle.json()["entry"][0]["resource"]["resourceType"] == "ServiceRequest"

    today = date.today()
    report = referrals.get(f"{base_url}/api/v1/reports/funder", timeout=10, params={
        "from": (today - timedelta(days=1)).isoformat(),
        "to": (today + timedelta(days=1)).isoformat(), "format": "csv"})
    assert report.status_code == 200 and report.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(report.content.decode("utf-8-sig"))))
    assert rows[0]["section"] == "participants_counted"
    assert "suppressed" in rows[0]
