"""The links of new-leg mails (`hub.mailbox.links`), as properties: a token names exactly the
leg and contact it was made for; no other hub's secret opens it; a token changed anywhere is
refused or still names the same leg and contact (never another); an old one is refused."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.mailbox.links import LinkRefused, make_token, read_token

SECRETS = st.text(min_size=16, max_size=64)
IDS = st.uuids()
TOKEN_CHARACTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."


@settings(max_examples=200, deadline=None)
@given(SECRETS, IDS, IDS)
def test_a_token_names_the_leg_and_contact_it_was_made_for(secret: str, leg: uuid.UUID,
                                                          contact: uuid.UUID) -> None:
    assert read_token(secret, make_token(secret, leg, contact)) == (leg, contact)


@settings(max_examples=200, deadline=None)
@given(SECRETS, SECRETS, IDS, IDS)
def test_another_secret_never_opens_a_token(secret: str, other: str, leg: uuid.UUID,
                                            contact: uuid.UUID) -> None:
    if other == secret:
        return
    with pytest.raises(LinkRefused):
        read_token(other, make_token(secret, leg, contact))


@settings(max_examples=500, deadline=None)
@given(SECRETS, IDS, IDS, st.data())
def test_a_changed_token_never_names_another_leg_or_contact(
        secret: str, leg: uuid.UUID, contact: uuid.UUID, data: st.DataObject) -> None:
    token = make_token(secret, leg, contact)
    position = data.draw(st.integers(0, len(token) - 1))
    character = data.draw(st.sampled_from(TOKEN_CHARACTERS).filter(
        lambda c: c != token[position]))
    changed = token[:position] + character + token[position + 1:]
    try:
        named = read_token(secret, changed)
    except LinkRefused:
        return
    # Base64's last character carries spare bits: a few changes decode to the same bytes.
    assert named == (leg, contact)


def test_a_token_older_than_its_lifetime_is_refused() -> None:
    token = make_token("s" * 32, uuid.uuid4(), uuid.uuid4())
    with pytest.raises(LinkRefused):
        read_token("s" * 32, token, max_age=timedelta(seconds=-1))
