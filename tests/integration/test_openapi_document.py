"""The published OpenAPI document says what the hub does (issue 22): errors as problem+json
with their schema, every content type, the headers the API reads, bodies required only when
they are, the inbound webhook's body, headers and statuses.  Schemathesis checks the answers
against it (tests/e2e/test_fuzz_api.py); this checks the document's own statements."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from hub.api.openapi import PROBLEM_JSON

OPERATIONS = ("get", "post", "put", "patch", "delete")


@pytest.fixture(scope="module")
def document(app: Flask) -> dict[str, Any]:
    return app.test_client().get("/api/v1/openapi.json").get_json()


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method, path, operation) for path, item in document["paths"].items()
            for method, operation in item.items() if method in OPERATIONS]


def resolve(document: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in item:
        section, name = item["$ref"].split("/")[-2:]
        item = document["components"][section][name]
    return item


def test_every_error_is_documented_as_a_problem(document: dict[str, Any]) -> None:
    problem = document["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "detail"}
    assert problem["properties"]["status"]["type"] == "integer"  # not flask-smorest's string
    assert "Error" not in document["components"]["schemas"]
    for method, path, operation in operations(document):
        responses = operation["responses"]
        assert "default" in responses and "400" in responses, (method, path)
        for status, response in responses.items():
            if status == "default" or int(status) >= 400:
                content = resolve(document, response)["content"]
                assert list(content) == [PROBLEM_JSON], (method, path, status)
                assert content[PROBLEM_JSON]["schema"] == {
                    "$ref": "#/components/schemas/Problem"}
        if operation.get("security"):
            assert {"401", "403"} <= set(responses), (method, path)


def test_every_success_documents_its_content(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        for status, response in operation["responses"].items():
            if status.startswith("2") and status != "204":
                assert resolve(document, response).get("content"), (method, path, status)
    paths = document["paths"]
    assert list(paths["/api/v1/referrals/{referral_id}/fhir"]["get"]["responses"]["200"]
                ["content"]) == ["application/fhir+json"]
    for path in ("/api/v1/reports/funder", "/api/v1/participants/{participant_id}/consents",
                 "/api/v1/participants/{participant_id}/access-log"):
        assert set(paths[path]["get"]["responses"]["200"]["content"]) == {
            "application/json", "text/csv"}, path


def test_the_headers_the_api_reads_are_parameters(document: dict[str, Any]) -> None:
    def headers(operation: dict[str, Any]) -> set[str]:
        return {resolve(document, p)["name"] for p in operation.get("parameters", [])
                if resolve(document, p)["in"] == "header"}

    paths = document["paths"]
    for action in ("acknowledge", "accept", "decline", "start", "complete", "forward", "cancel"):
        operation = paths[f"/api/v1/referrals/{{referral_id}}/{action}"]["post"]
        assert headers(operation) == {"Idempotency-Key", "If-Match"}, action
    assert "Idempotency-Key" in headers(paths["/api/v1/referrals"]["post"])
    assert "Idempotency-Key" in headers(paths["/api/v1/participants"]["post"])

    inbound = paths["/webhooks/inbound/{organization_id}"]["post"]
    assert headers(inbound) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert all(resolve(document, p)["required"] for p in inbound["parameters"])
    assert inbound["requestBody"]["required"] is True
    body = resolve(document, inbound["requestBody"]["content"]["application/json"]["schema"])
    assert set(body["required"]) == {"action", "referral_id"}
    assert {"200", "201", "401"} <= set(inbound["responses"])


def test_bodies_are_required_only_when_the_hub_needs_one(
        document: dict[str, Any], network: Any) -> None:
    paths = document["paths"]
    acknowledge = paths["/api/v1/referrals/{referral_id}/acknowledge"]["post"]
    assert acknowledge["requestBody"]["required"] is False
    assert paths["/api/v1/referrals"]["post"]["requestBody"]["required"] is True
    # And indeed the hub takes none.
    sender, receiver = network.partner(), network.partner()
    leg = sender.refer(receiver)
    answer = receiver.call("POST", f"/api/v1/referrals/{leg['id']}/acknowledge")
    assert answer.status_code == 200, answer.get_data(as_text=True)


def test_rules_the_hub_enforces_are_in_the_schema(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    entry = next(s for name, s in schemas.items() if "time_zone" in s.get("properties", {})
                 and "enum" in s["properties"]["time_zone"])
    assert "America/Toronto" in entry["properties"]["time_zone"]["enum"]
    referrals = {p["name"]: p for p in document["paths"]["/api/v1/referrals"]["get"]
                 ["parameters"]}
    assert referrals["cursor"]["schema"]["pattern"]
    assert "accepted" in referrals["status"]["schema"]["pattern"]
    funder = {p["name"]: p for p in document["paths"]["/api/v1/reports/funder"]["get"]
              ["parameters"]}
    assert "five years" in funder["to"]["description"]
