"""The counsellors' peer pages, through HTTP like a browser (docs/design.md §11): a peer
enrolled from the participant's page, found without a name, proposed to a newcomer; the
peer's organization answers for them; the newcomer's counsellor then reads the given name and
the chosen channel; a refused form shows what was typed."""

from __future__ import annotations

import uuid

from flask import Flask

from tests.integration.test_portal_pages import Network, net, register
from tests.portal import Person, make_user, text_of

__all__ = ["net"]


def consent(person: Person, participant: uuid.UUID, purpose: str, *org_ids: str) -> None:
    form: dict[str, object] = {"purpose": purpose, "evidence": "verbal"}
    if org_ids:
        form["organization_ids"] = list(org_ids)
    else:
        form["network_wide"] = "1"
    answer = person.post(f"/participants/{participant}/consents/new", form)
    assert answer.status_code == 302, text_of(answer)


def test_enrol_find_propose_answer_and_read_the_peer(app: Flask, net: Network) -> None:
    peer_counsellor = Person.logged_in(app, make_user(app, net.receiver, "counsellor"))
    karim = register(peer_counsellor, given_name="Karim", family_name="Haddad",
                     phone="+1 418 555 0199", region="01")
    enrol = f"/participants/{karim}/peer"
    assert "Enregistrez d’abord le consentement" in text_of(peer_counsellor.get(enrol))
    consent(peer_counsellor, karim, "peer_matching", str(net.sender.id))
    refused = peer_counsellor.post(enrol, {"region": "01", "municipality": "Rimouski",
                                           "languages": "fr\nar", "offers": "visit_places",
                                           "contact_channels": "email",
                                           "settled_since": "2023-05-01"})
    assert refused.status_code == 422  # no pathway ticked
    assert "Vérifiez les champs" in text_of(refused)
    assert 'value="Rimouski"' in refused.get_data(as_text=True)  # what was typed
    done = peer_counsellor.post(enrol, {"region": "01", "municipality": "Rimouski",
                                        "languages": "fr\nar", "pathways": "settlement",
                                        "offers": "visit_places", "contact_channels": "email",
                                        "settled_since": "2023-05-01"})
    assert done.status_code == 302, text_of(done)

    amina = register(net.counsellor)
    consent(net.counsellor, amina, "peer_matching")
    found = net.counsellor.get("/peers?region=01&language=ar")
    page = text_of(found)
    assert "Rimouski" in page and "Faire visiter les lieux" in page and "2023" in page
    assert "Karim" not in page and "Haddad" not in page
    peer_id = found.get_data(as_text=True).split("/peers/")[1].split("/propose")[0]
    missing = net.counsellor.post(f"/peers/{peer_id}/propose", {"note": "Arrive en janvier"})
    assert missing.status_code == 422 and "Arrive en janvier" in missing.get_data(as_text=True)
    sent = net.counsellor.post(f"/peers/{peer_id}/propose", {
        "participant_id": str(amina), "note": "Arrive en janvier"})
    assert sent.status_code == 302, text_of(sent)
    mine = text_of(net.counsellor.get("/peer-matches"))
    assert "Proposé" in mine and "Karim" not in mine

    theirs = peer_counsellor.get("/peer-matches")
    assert "Amina, pour une personne-ressource de votre organisme" in text_of(theirs)
    match_id = theirs.get_data(as_text=True).split("/peer-matches/")[1].split("/")[0]
    assert peer_counsellor.post(f"/peer-matches/{match_id}/accept").status_code == 302
    accepted = text_of(net.counsellor.get("/peer-matches"))
    assert "Accepté" in accepted and "Karim" in accepted and "Haddad" not in accepted
    assert "418 555 0199" not in accepted  # a channel Karim did not choose
    assert net.counsellor.post(f"/peer-matches/{match_id}/accept").status_code == 403

    ended = net.counsellor.post(f"/peer-matches/{match_id}/end")
    assert ended.status_code == 302
    assert "Karim" not in text_of(net.counsellor.get("/peer-matches"))
