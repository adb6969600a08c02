"""Peer matching end to end (docs/design.md §11), in Chromium against a `hub run` server: a
counsellor finds a peer in the destination region and proposes them to a newcomer; the peer's
mail (written by the server's worker to HUB_MAIL_DIR) holds a link which, opened in another
browser context without an account, accepts; the counsellor then sees the peer's given name
and chosen channel; the peer ends it through the same link; the match ends and both
organizations get `peer_match.ended`.  The pages are checked with axe-core."""

from __future__ import annotations

import email
import email.policy
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import select

from hub import crypto
from hub.accounts.callers import Caller
from hub.consent import consents
from hub.db import db
from hub.events.store import Event, EventAudience
from hub.peers import matching
from hub.referrals.participants import register_participant
from tests.browser.conftest import Hub
from tests.browser.test_portal_story import check_page, log_in
from tests.portal import make_organization, make_user

LINK = re.compile(r"https?://[^\s]+(/jumelage/[A-Za-z0-9_-]{43})")


def _mail_to(hub: Hub, address: str, timeout: float = 60) -> str:
    """The text of the first mail the server's worker wrote for `address`."""
    url = hub.app.config["HUB_SETTINGS"].database_url
    folder = Path(url.removeprefix("sqlite:///")).parent / "mail"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in sorted(folder.glob("*.eml")) if folder.exists() else []:
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            if address in str(message["To"]):
                part = message.get_body(("plain",))
                assert part is not None
                return str(part.get_content())  # type: ignore[attr-defined]
        time.sleep(0.5)
    raise AssertionError(f"no mail to {address} in {folder}")


@contextmanager
def server_keys(hub: Hub) -> Iterator[None]:
    """The server's key ring while arranging data in this process (encrypted columns), the
    other tests' given back after (the ring is process-wide)."""
    settings = hub.app.config["HUB_SETTINGS"]
    previous = crypto._current
    crypto.install(crypto.KeyRing.from_settings(settings.data_keys, settings.secret_key))
    try:
        yield
    finally:
        crypto._current = previous


def test_a_counsellor_proposes_a_peer_who_accepts_then_ends_by_the_link(
        hub: Hub, browser: Any) -> None:
    tag = uuid.uuid4().hex[:6]
    sender = make_organization(hub.app, name=f"Carrefour {tag}")
    regional = make_organization(hub.app, kind="regional_partner", region="01",
                                 name=f"Accueil BSL {tag}")
    counsellor_email = make_user(hub.app, sender, "counsellor", "fr", "Sophie Tremblay")
    peer_email = f"youssef.{tag}@example.org"
    with server_keys(hub), hub.app.app_context(), db.job_session() as session:
        regional_caller = Caller(regional.id, "user:arrange")
        peer = register_participant(session, organization_id=regional.id,
                                    given_name="Youssef", family_name="Amrani",
                                    preferred_language="fr", email=peer_email,
                                    phone="+1 418 555 0142")
        consents.grant(session, regional_caller, peer.id, purpose="peer_matching",
                       evidence="written", organization_ids=[sender.id])
        matching.enrol(session, regional_caller, participant_id=peer.id, region="01",
                       municipality="Rimouski", languages=["fr", "ar"],
                       pathways=["settlement"], offers=["talk_settlement", "visit_places"],
                       contact_channels=["email"], settled_since=date(2023, 9, 1))
        newcomer = register_participant(session, organization_id=sender.id,
                                        given_name="Amina", family_name=f"Benali{tag}",
                                        preferred_language="fr")
        consents.grant(session, Caller(sender.id, "user:arrange"), newcomer.id,
                       purpose="peer_matching", evidence="verbal", network_wide=True)

    context = browser.new_context(locale="fr-CA")
    counsellor = log_in(context, hub, counsellor_email)
    counsellor.goto(f"{hub.base_url}/peers?region=01")
    assert "Rimouski" in counsellor.content() and "Youssef" not in counsellor.content()
    check_page(counsellor, "peers", "fr")
    row = counsellor.locator("tr", has_text="Rimouski")
    row.locator("select[name=participant_id]").select_option(label=f"Amina Benali{tag}")
    row.locator("input[name=note]").fill("Arrive en janvier avec sa famille.")
    with counsellor.expect_navigation():
        row.locator("button[type=submit]").click()
    assert "/peer-matches" in counsellor.url and "Proposé" in counsellor.content()

    link = LINK.search(_mail_to(hub, peer_email))
    assert link, "the proposal mail holds the peer's link"
    peer_page = browser.new_context(locale="fr-CA").new_page()
    peer_page.goto(f"{hub.base_url}{link.group(1)}")
    assert "Amina" in peer_page.content() and "Arrive en janvier" in peer_page.content()
    check_page(peer_page, "peer-link", "fr")
    with peer_page.expect_navigation():
        peer_page.get_by_role("button", name="Oui, j’accepte").click()
    assert "Vous avez accepté de parler avec Amina" in peer_page.content()

    counsellor.reload()
    shown = counsellor.locator("main").inner_text()
    assert "Accepté" in shown and "Youssef" in shown and peer_email in shown
    assert "Amrani" not in shown and "418 555 0142" not in shown  # only what he chose
    check_page(counsellor, "peer-matches", "fr")

    peer_page.goto(f"{hub.base_url}{link.group(1)}")
    with peer_page.expect_navigation():
        peer_page.get_by_role("button", name="Mettre fin à ce contact").click()
    assert "Ce contact est terminé" in peer_page.content()

    counsellor.reload()
    shown = counsellor.locator("main").inner_text()
    assert "Terminé" in shown and "Youssef" not in shown
    with hub.app.app_context(), db.job_session() as session:
        ended = session.execute(select(Event.position).where(
            Event.type == "peer_match.ended",
            Event.data["peer_match"]["organization_id"].as_string() == str(sender.id))
        ).scalars().all()
        assert len(ended) == 1
        audience = set(session.scalars(select(EventAudience.organization_id).where(
            EventAudience.event_position == ended[0])))
    assert audience == {sender.id, regional.id}
    context.close()
