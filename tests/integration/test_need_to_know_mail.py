"""Employers' need to know (docs/design.md §12) in the mail channel: the new-leg mail to an
employer's contact (over SMTP to a real local receiver) and the page its link opens show the
person's name and how to reach them, never the reason for the referral or the needs, unless
the consent shares the details."""

from __future__ import annotations

from flask import Flask

from tests.helpers import Network
from tests.integration.test_mail import SmtpServer
from tests.integration.test_mailbox import (
    address,
    body_of,
    mails_to,
    set_entry,
    token_in,
)


def test_an_employers_mail_and_link_page_keep_to_names_and_contacts(
        app: Flask, network: Network, smtp: SmtpServer) -> None:  # noqa: F811
    sender = network.partner(name="Carrefour d'intégration de Montréal")
    employer = network.partner(kind="employer", region="01", name="Usinage Rimouski")
    staff = address()
    set_entry(employer, contacts=[{"name": "Ressources humaines", "email": staff,
                                   "notify_referrals": True}])
    withheld = sender.refer(employer, reason_for_referral="Soudeur, arrêt de travail en 2024",
                            needs=["logement adapté"])
    (mail,) = mails_to(app, smtp, staff)
    text = body_of(mail)
    assert "Amina B." in text
    assert "arrêt de travail" not in text and "logement adapté" not in text
    page = app.test_client().get(f"/a/{token_in(mail)}").get_data(as_text=True)
    assert "Amina" in page and "Benali" in page
    assert "arrêt de travail" not in page and "logement adapté" not in page

    participant = sender.register_participant()["id"]
    sender.grant_consent(participant, employer, share_details=True)
    sender.refer(employer, participant, consent=False,
                 reason_for_referral="Soudeur, arrêt de travail en 2024",
                 needs=["logement adapté"])
    shared = mails_to(app, smtp, staff)[-1]  # the second leg's mail
    page = app.test_client().get(f"/a/{token_in(shared)}").get_data(as_text=True)
    assert "arrêt de travail" in page and "logement adapté" in page
    assert withheld["id"] not in page  # the second leg's page, not the first
