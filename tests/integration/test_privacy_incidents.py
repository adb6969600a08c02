"""The register of confidentiality incidents (docs/design.md §15) through the API: the CAI's
fields, an organization's own register only, corrections, CSV, and a database that refuses to
delete an entry before five years, on both backends."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from sqlalchemy import Text, cast, delete, select, update

from hub.db import db
from hub.privacy.incidents import PrivacyIncident
from tests.helpers import Network, Partner

PROBLEM_JSON = "application/problem+json"
SCOPES = ["privacy:manage", "participants:read"]


def incident(**fields: object) -> dict[str, object]:
    return {
        "information_involved": "Noms et courriels de 3 participantes",
        "circumstances": "Liste envoyée par erreur à un organisme partenaire",
        "occurred_at": "2026-11-30T15:00:00Z",
        "discovered_at": "2026-12-01T09:30:00Z",
        "people_affected": 3,
        "risk_assessment": "Destinataire de confiance, liste supprimée le jour même",
        "serious_injury_risk": False,
        **fields,
    }


def record(partner: Partner, **fields: object) -> dict:
    response = partner.post("/api/v1/privacy-incidents", incident(**fields))
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def test_an_incident_is_recorded_with_the_cai_fields_and_read_back(network: Network) -> None:
    admin = network.partner(scopes=SCOPES)
    created = record(admin, measures_taken="Rappel de la procédure à l'équipe")
    assert created["information_involved"] == "Noms et courriels de 3 participantes"
    assert created["discovered_at"] == "2026-12-01T09:30:00Z"
    assert created["people_affected"] == 3 and created["serious_injury_risk"] is False
    assert created["cai_notified_at"] is None and created["people_notified_at"] is None
    assert created["recorded_by"] == f"client:{admin.client_id}"
    assert created["kept_until"][:4] == str(int(created["recorded_at"][:4]) + 5)

    again = admin.get(f"/api/v1/privacy-incidents/{created['id']}")
    assert again.status_code == 200
    assert again.get_json() == created


def test_a_correction_changes_what_is_sent_and_keeps_the_rest(network: Network) -> None:
    admin = network.partner(scopes=SCOPES)
    created = record(admin)
    changed = admin.call("PATCH", f"/api/v1/privacy-incidents/{created['id']}", json={
        "serious_injury_risk": True, "cai_notified_at": "2026-12-02T10:00:00Z",
        "people_notified_at": "2026-12-02T11:00:00Z"})
    assert changed.status_code == 200, changed.get_data(as_text=True)
    body = changed.get_json()
    assert body["serious_injury_risk"] is True
    assert body["cai_notified_at"] == "2026-12-02T10:00:00Z"
    assert body["circumstances"] == created["circumstances"]
    assert body["recorded_at"] == created["recorded_at"]


def test_impossible_dates_and_missing_fields_are_422_per_field(network: Network) -> None:
    admin = network.partner(scopes=SCOPES)
    refused = admin.post("/api/v1/privacy-incidents", incident(
        occurred_at="2026-12-02T00:00:00Z", discovered_at="2026-12-01T00:00:00Z",
        cai_notified_at="2026-11-01T00:00:00Z"))
    assert refused.status_code == 422 and refused.mimetype == PROBLEM_JSON
    errors = refused.get_json()["errors"]
    assert "occurred_at" in errors and "cai_notified_at" in errors
    future = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    refused = admin.post("/api/v1/privacy-incidents", incident(discovered_at=future))
    assert refused.status_code == 422
    assert "future" in refused.get_json()["errors"]["discovered_at"][0]

    body = incident()
    del body["serious_injury_risk"]
    missing = admin.post("/api/v1/privacy-incidents", body)
    assert missing.status_code == 422
    assert "serious_injury_risk" in missing.get_json()["errors"]
    blank = admin.call("PATCH", f"/api/v1/privacy-incidents/{record(admin)['id']}",
                       json={"circumstances": "   "})
    assert blank.status_code == 422
    assert "circumstances" in blank.get_json()["errors"]


def test_the_register_is_the_organizations_own_and_needs_the_scope(network: Network) -> None:
    admin, other = network.partner(scopes=SCOPES), network.partner(scopes=SCOPES)
    created = record(admin)
    assert other.get(f"/api/v1/privacy-incidents/{created['id']}").status_code == 404
    assert other.call("PATCH", f"/api/v1/privacy-incidents/{created['id']}",
                      json={"people_affected": 1}).status_code == 404
    assert created["id"] not in [i["id"] for i in
                                 other.get("/api/v1/privacy-incidents").get_json()["items"]]
    partner_system = network.partner()  # the default scopes leave the register out
    refused = partner_system.get("/api/v1/privacy-incidents")
    assert refused.status_code == 403 and refused.mimetype == PROBLEM_JSON


def test_the_register_pages_latest_discovered_first_and_exports_csv(network: Network) -> None:
    admin = network.partner(scopes=SCOPES)
    ids = [record(admin, discovered_at=f"2026-11-0{day}T12:00:00Z",
                  occurred_at=None)["id"] for day in (1, 3, 2)]
    record(admin, circumstances="=HYPERLINK(\"http://x\")", discovered_at="2026-10-01T00:00:00Z",
           occurred_at=None)
    first = admin.get("/api/v1/privacy-incidents?limit=2").get_json()
    second = admin.get(f"/api/v1/privacy-incidents?limit=2&cursor={first['next_cursor']}")
    listed = [i["id"] for i in first["items"] + second.get_json()["items"]]
    assert listed[:3] == [ids[1], ids[2], ids[0]]

    exported = admin.get("/api/v1/privacy-incidents?format=csv")
    assert exported.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(exported.get_data(as_text=True).lstrip("\ufeff"))))
    assert [r["id"] for r in rows][:3] == [ids[1], ids[2], ids[0]]
    assert rows[0]["information_involved"] == "Noms et courriels de 3 participantes"
    assert rows[3]["circumstances"].startswith("'=")  # never a formula in the admin's sheet


def test_the_free_text_is_encrypted_at_rest(app: Flask, network: Network) -> None:
    admin = network.partner(scopes=SCOPES)
    created = record(admin, circumstances="Dossier de Madame Zéphyrine Quesnel égaré")
    with app.app_context(), db.job_session() as session:
        stored = session.scalar(select(cast(PrivacyIncident.circumstances, Text)).where(
            PrivacyIncident.id == uuid.UUID(created["id"])))  # the token as stored
    assert "Quesnel" not in stored


def test_the_database_refuses_to_delete_an_entry_before_five_years(
        app: Flask, network: Network) -> None:
    admin = network.partner(scopes=SCOPES)
    created = uuid.UUID(record(admin)["id"])
    with app.app_context(), pytest.raises(Exception, match="at least 5 years"), \
            db.job_session() as session:
        session.execute(delete(PrivacyIncident).where(PrivacyIncident.id == created))
    # Nor may the moment it was recorded move back, to make it old enough.
    with app.app_context(), pytest.raises(Exception, match="recorded_at cannot change"), \
            db.job_session() as session:
        session.execute(update(PrivacyIncident).where(PrivacyIncident.id == created).values(
            recorded_at=datetime(2019, 1, 1, tzinfo=UTC)))
    assert admin.get(f"/api/v1/privacy-incidents/{created}").status_code == 200


def test_an_entry_older_than_five_years_may_be_deleted(app: Flask, network: Network) -> None:
    """The rule is "at least five years", not "forever": an old entry can go (inserted old,
    since no one can age one)."""
    admin = network.partner(scopes=SCOPES)
    old = uuid.uuid4()
    moment = datetime.now(UTC) - timedelta(days=5 * 366 + 2)
    with app.app_context(), db.job_session() as session:
        session.add(PrivacyIncident(
            id=old, organization_id=uuid.UUID(admin.organization_id),
            information_involved="Adresses", circumstances="Perte d'un portable",
            discovered_at=moment, serious_injury_risk=False, recorded_at=moment,
            recorded_by="user:ancien", updated_at=moment, updated_by="user:ancien"))
    with app.app_context(), db.job_session() as session:
        session.execute(delete(PrivacyIncident).where(PrivacyIncident.id == old))
    assert admin.get(f"/api/v1/privacy-incidents/{old}").status_code == 404
