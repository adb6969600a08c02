"""Finding every participant of the organization (names encrypted at rest), duplicates found
without a birth year, and the correction of a participant (`PATCH`, `participant.updated`)."""

from __future__ import annotations

import time
import uuid

from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from hub.db import db
from hub.referrals import participant_search, participants
from tests.helpers import PARTICIPANT, Network, Partner


def _search(partner: Partner, query: str, **params: object) -> list[dict[str, object]]:
    response = partner.get("/api/v1/participants", query_string={"q": query, **params})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["items"]


def _ids(items: list[dict[str, object]]) -> list[object]:
    return [item["id"] for item in items]


def test_search_finds_the_first_of_hundreds_by_a_prefix_typed_without_accents(
        network: Network) -> None:
    sender = network.partner()
    first = sender.register_participant(given_name="Marie-Ève", family_name="Bérubé",
                                         phone="514 555-0199", email="me.berube@example.org")
    for number in range(300):
        sender.register_participant(given_name=f"Personne{number}", family_name="Tremblay")

    for query in ("berube", "BERU", "Bérubé marie", "eve ber", "marie-eve", "be ma"):
        assert _ids(_search(sender, query)) == [first["id"]], query
    for digits in ("5145550199", "514 555-0199", "+1 (514) 555-0199", "555-0199", "0199"):
        assert _ids(_search(sender, digits)) == [first["id"]], digits
    assert _ids(_search(sender, "ME.Berube@example.org")) == [first["id"]]
    # Every word must match; an unknown word finds nobody.
    assert _search(sender, "berube tremblay") == []
    assert _search(sender, "zzz") == []


def test_search_pages_newest_first_and_sees_only_the_organizations_own(
        network: Network) -> None:
    sender, other = network.partner(), network.partner()
    mine = [sender.register_participant(family_name="Gagnon")["id"] for _ in range(5)]
    other.register_participant(family_name="Gagnon")

    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        response = sender.get("/api/v1/participants", query_string={"q": "gag", **params})
        body = response.get_json()
        seen += _ids(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(mine))
    assert len(_search(sender, "")) == 5
    bad = sender.get("/api/v1/participants", query_string={"cursor": "nope"})
    assert bad.status_code == 400 and bad.content_type == "application/problem+json"


def test_search_terms_hold_hashes_never_names(app: Flask, network: Network) -> None:
    sender = network.partner()
    person = sender.register_participant(given_name="Zéphirine", family_name="Ouellet")
    with app.app_context():
        terms = db.session.execute(text(
            "SELECT term FROM participant_search_terms WHERE participant_id = :p"),
            {"p": uuid.UUID(person["id"]).hex if db.session.get_bind().dialect.name == "sqlite"
             else person["id"]}).scalars().all()
    assert terms and all(len(term) == 64 for term in terms)
    assert not any("zep" in term or "ouel" in term for term in terms)


_NAME = st.text(st.sampled_from("abcdeéèêëiïoôuùçAÉÈZ- '"), min_size=2, max_size=12).filter(
    lambda name: len(participant_search.name_words(name)) > 0)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(given_name=_NAME, family_name=_NAME, data=st.data())
def test_any_prefix_of_any_name_word_is_a_term_of_the_name(
        given_name: str, family_name: str, data: st.DataObject) -> None:
    terms = participant_search.plain_terms(given_name, family_name, None, None)
    words = participant_search.name_words(f"{given_name} {family_name}")
    chosen = data.draw(st.lists(st.sampled_from(words), min_size=1, max_size=3))
    typed = " ".join(data.draw(st.integers(min(2, len(w)), len(w)).map(lambda n, w=w: w[:n]))
                     .upper() for w in chosen)
    assert participant_search.query_terms(typed) <= terms


def test_the_same_name_and_email_without_birth_year_is_a_duplicate(network: Network) -> None:
    sender = network.partner()
    person = {**PARTICIPANT, "given_name": "Nguyen", "family_name": "Van An",
              "birth_year": None, "email": "vanan@example.org", "phone": None}
    first = sender.register_participant(**person)
    # The names swapped, the email in capitals, still no birth year.
    again = sender.post("/api/v1/participants", {**person, "given_name": "Van An",
                                                 "family_name": "NGUYEN",
                                                 "email": "VanAn@example.org"})
    assert again.status_code == 409
    assert [m["id"] for m in again.get_json()["matches"]] == [first["id"]]
    # One with a birth year, one without: still the same email, the same person.
    again = sender.post("/api/v1/participants", {**person, "birth_year": 1988})
    assert again.status_code == 409


def _updates_in_feed(partner: Partner) -> list[dict[str, object]]:
    """The `participant.updated` events of the partner's feed. On PostgreSQL the feed shows an
    event once every older transaction of the server finished (`hub.events.feed`), and the
    tests' server is shared: poll a little, as a partner system would."""
    for _ in range(50):
        events = partner.get("/api/v1/events").get_json()["items"]
        updated = [e for e in events if e["type"] == "participant.updated"]
        if updated:
            return updated
        time.sleep(0.1)
    return []


def test_a_correction_changes_the_record_and_tells_who_received_the_person(
        network: Network) -> None:
    sender, receiver, outsider = network.partner(), network.partner(), network.partner()
    participant = sender.register_participant(given_name="Amina", family_name="Benali",
                                              phone="514 555 0101")
    leg = sender.refer(receiver, participant["id"])
    path = f"/api/v1/participants/{participant['id']}"

    read = sender.get(path)
    assert read.headers["ETag"] == '"1"'
    changed = sender.call("PATCH", path, json={"family_name": "Benali-Haddad",
                                               "phone": "438 555 0123"},
                          headers={"If-Match": read.headers["ETag"]})
    assert changed.status_code == 200, changed.get_data(as_text=True)
    assert changed.headers["ETag"] == '"2"'
    assert changed.get_json()["family_name"] == "Benali-Haddad"
    assert changed.get_json()["version"] == 2
    # Found under the new name and phone, no longer under the old phone.
    assert _ids(_search(sender, "haddad")) == [participant["id"]]
    assert _ids(_search(sender, "4385550123")) == [participant["id"]]
    assert _search(sender, "5145550101") == []

    # A stale version is refused, nothing changes.
    stale = sender.call("PATCH", path, json={"given_name": "Aminata"},
                        headers={"If-Match": '"1"'})
    assert stale.status_code == 412
    assert stale.get_json()["current_version"] == 2
    assert sender.get(path).get_json()["given_name"] == "Amina"

    # The receiver is told which fields changed, never their values, and reads them again.
    updated = _updates_in_feed(receiver)
    assert len(updated) == 1
    assert updated[0]["subject"] == f"participants/{participant['id']}"
    assert updated[0]["data"] == {"participant": {
        "id": participant["id"], "version": 2, "changed": ["family_name", "phone"]}}
    assert "Haddad" not in str(updated[0])
    assert receiver.get(path).get_json()["family_name"] == "Benali-Haddad"
    assert receiver.get(f"/api/v1/referrals/{leg['id']}").get_json()["participant"][
        "phone"] == "438 555 0123"
    assert not any(e["type"] == "participant.updated"
                   for e in outsider.get("/api/v1/events").get_json()["items"])

    # Only the registering organization corrects; the receiver and others get 404.
    for other in (receiver, outsider):
        assert other.call("PATCH", path, json={"given_name": "X"}).status_code == 404
    # No change, no new version, no event.
    same = sender.call("PATCH", path, json={"given_name": "Amina"})
    assert same.status_code == 200 and same.headers["ETag"] == '"2"'


def test_a_correction_is_validated_like_a_registration(network: Network) -> None:
    sender = network.partner()
    participant = sender.register_participant()
    path = f"/api/v1/participants/{participant['id']}"
    for body, field in (({"given_name": ""}, "given_name"), ({"given_name": None}, "given_name"),
                        ({"family_name": "x" * 201}, "family_name"),
                        ({"preferred_language": "français"}, "preferred_language"),
                        ({"nickname": "A"}, "nickname")):
        refused = sender.call("PATCH", path, json=body)
        assert refused.status_code == 422, body
        assert refused.content_type == "application/problem+json"
        assert field in str(refused.get_json()["errors"]), refused.get_json()
    bad_tag = sender.call("PATCH", path, json={"given_name": "A"}, headers={"If-Match": "x"})
    assert bad_tag.status_code == 400


def test_a_correction_into_another_record_is_a_possible_duplicate(network: Network) -> None:
    sender = network.partner()
    first = sender.register_participant(given_name="Omar", family_name="Haddad",
                                        email="omar@example.org")
    second = sender.register_participant(given_name="Omer", family_name="Haddad",
                                         email="omar@example.org")
    path = f"/api/v1/participants/{second['id']}"
    refused = sender.call("PATCH", path, json={"given_name": "Omar"})
    assert refused.status_code == 409
    assert [m["id"] for m in refused.get_json()["matches"]] == [first["id"]]
    assert sender.call("PATCH", path, json={"given_name": "Omar", "allow_duplicate": True}
                       ).status_code == 200


def test_a_search_run_again_and_again_is_planned_for_its_own_terms(
        app: Flask, network: Network) -> None:
    """psycopg prepares a statement run 5 times; PostgreSQL would then plan it once for every
    term (a generic plan), reading every holder of a common name to sort them. Each run must
    be planned for its own term, and find the same page every time."""
    sender = network.partner()
    for number in range(30):
        sender.register_participant(given_name=f"Personne{number}", family_name="Tremblay")
    organization_id = uuid.UUID(sender.organization_id)
    with app.app_context():
        postgresql = db.session.get_bind().dialect.name == "postgresql"
        before = _plans_of_the_search() if postgresql else (0, 0)
        pages = [[p.id for p in participants.search(db.session, organization_id, "tremblay",
                                                    limit=10)] for _ in range(12)]
        assert len(pages[0]) == 10 and all(page == pages[0] for page in pages)
        if postgresql:
            generic, custom = (a - b for a, b in zip(_plans_of_the_search(), before, strict=True))
            assert (generic, custom) == (0, 7)  # runs 6 to 12 prepared, each planned anew
        db.session.rollback()


def _plans_of_the_search() -> tuple[int, int]:
    """How many times this connection's prepared searches were planned generically, and for
    their own values."""
    generic, custom = db.session.execute(text(
        "SELECT coalesce(sum(generic_plans), 0), coalesce(sum(custom_plans), 0) "
        "FROM pg_prepared_statements WHERE statement LIKE 'SELECT participants.%' "
        "AND statement LIKE '%participant_search_terms%'")).one()
    return int(generic), int(custom)
