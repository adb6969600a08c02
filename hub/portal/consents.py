"""Withdrawing a participant's consent from the portal: a confirmation page saying what will
happen (which open referrals get cancelled, who is told to erase the data), then the API's
own use case (`hub.consent.withdrawal.withdraw`), whose effects show on the participant's
page."""

from __future__ import annotations

import uuid

from flask import flash, redirect, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from werkzeug import Response

from hub.accounts.users import SENDING_ROLES
from hub.api.common import pseudonym_key
from hub.consent import consents, withdrawal
from hub.consent.visibility import Reader
from hub.db import db, utcnow
from hub.errors import NotFound
from hub.portal.common import caller, login_required, page, portal_blueprint
from hub.portal.legs import leg_rows, organization_names
from hub.referrals import legs
from hub.referrals.participants import Participant

blp = portal_blueprint("consent_pages", __name__)


def _consent_of(participant_id: uuid.UUID, consent_id: uuid.UUID) -> consents.Consent:
    """The consent, if it is this participant's and the user's organization holds them."""
    participant = consents.own_participant(db.session, caller(), participant_id)
    found = consents.visible_consent(db.session, caller(), consent_id)
    if found.participant_id != participant.id:
        raise NotFound("consent", consent_id)
    return found


def legs_losing_cover(found: consents.Consent) -> list[legs.Referral]:
    """Open legs that no other active `referral_sharing` consent covers: the withdrawal will
    cancel these (the rule itself is applied by `hub.consent.withdrawal.end`)."""
    if found.purpose != consents.Purpose.REFERRAL_SHARING:
        return []
    now = utcnow()
    others = [c for c in consents.history(db.session, found.participant_id)
              if c.id != found.id and c.purpose == found.purpose
              and c.status(now) is consents.ConsentStatus.ACTIVE]
    return [leg for leg in legs.open_legs_of(db.session, found.participant_id)
            if found.names(leg.to_organization_id)
            and not any(c.names(leg.to_organization_id) for c in others)]


@blp.get("/participants/<uuid:participant_id>/consents/<uuid:consent_id>/withdraw")
@login_required(SENDING_ROLES)
def confirm(participant_id: uuid.UUID, consent_id: uuid.UUID) -> Response:
    found = _consent_of(participant_id, consent_id)
    participant = db.session.get(Participant, participant_id)
    assert participant is not None  # `_consent_of` found it, or raised NotFound
    reader = Reader(db.session, caller(), pseudonym_key())
    consent_status = found.status(utcnow()).value
    return page("portal/consent_withdraw.html", consent=found, consent_status=consent_status,
                participant=reader.participant(participant),
                organizations=sorted(organization_names(set(found.organization_ids)).values()),
                legs=leg_rows(legs_losing_cover(found), utcnow(), reader))


@blp.post("/participants/<uuid:participant_id>/consents/<uuid:consent_id>/withdraw")
@login_required(SENDING_ROLES)
def withdraw(participant_id: uuid.UUID, consent_id: uuid.UUID) -> Response:
    """Withdraw through the API's use case; its effects are in the same transaction."""
    found = _consent_of(participant_id, consent_id)
    before = {leg.id for leg in legs.open_legs_of(db.session, participant_id)}
    withdrawal.withdraw(db.session, caller(), found.id)
    after = {leg.id for leg in legs.open_legs_of(db.session, participant_id)}
    cancelled = len(before - after)
    flash(ngettext("Consent withdrawn. %(num)d open referral was cancelled.",
                   "Consent withdrawn. %(num)d open referrals were cancelled.", cancelled)
          if cancelled else _("Consent withdrawn. No open referral depended on it."),
          "success")
    return redirect(url_for("sending.participant_detail", participant_id=participant_id))
