"""FHIR R4 export of a referral leg (`GET /api/v1/referrals/{id}/fhir`): the same visibility
as reading the leg, built by `hub.adapters.fhir`."""

from __future__ import annotations

import json
import uuid

from flask import Response
from flask.views import MethodView
from sqlalchemy import select

from hub.adapters import fhir
from hub.adapters.oauth import current_caller, require_scope
from hub.api.common import Blueprint, pseudonym_key
from hub.consent.consents import Consent, ConsentOrganization, snapshot
from hub.consent.visibility import Reader
from hub.db import db
from hub.directory.organizations import Organization
from hub.referrals import legs

blp = Blueprint("fhir", __name__, url_prefix="/api/v1/referrals",
                description="Referral legs as FHIR R4 bundles.")

FHIR_JSON = "application/fhir+json"


def _consent_for(leg: legs.Referral) -> Consent | None:
    """The latest referral_sharing consent naming the leg's receiver (or the whole network)."""
    named = select(ConsentOrganization.consent_id).where(
        ConsentOrganization.organization_id == leg.to_organization_id)
    return db.session.scalars(
        select(Consent).where(Consent.participant_id == leg.participant_id,
                              Consent.purpose == "referral_sharing",
                              Consent.network_wide | Consent.id.in_(named))
        .order_by(Consent.granted_at.desc()).limit(1)).first()


@blp.route("/<uuid:referral_id>/fhir")
class ReferralFhir(MethodView):
    @require_scope("referrals:read")
    @blp.response(200, content_type=FHIR_JSON)
    @blp.doc(responses={"200": {"content": {FHIR_JSON: {"schema": {
        "type": "object", "required": ["resourceType", "type", "entry"],
        "properties": {"resourceType": {"type": "string", "enum": ["Bundle"]},
                       "type": {"type": "string", "enum": ["collection"]},
                       "entry": {"type": "array", "items": {"type": "object"}}},
        "description": "A FHIR R4 Bundle (http://hl7.org/fhir/R4/bundle.html)."}}}}})
    def get(self, referral_id: uuid.UUID) -> Response:
        """The leg as a FHIR R4 `collection` Bundle: ServiceRequest, Task (status as in the
        lifecycle's mapping, `partOf` the previous leg's Task when forwarded, `statusReason`
        for declines), Patient only when you may see who the person is (otherwise the
        references carry an identifier without identity), both Organizations, and the
        referral_sharing Consent."""
        caller = current_caller()
        leg = legs.visible_referral(db.session, caller, referral_id)
        view = Reader(db.session, caller, pseudonym_key()).referral(leg)
        organizations = [db.session.get(Organization, leg.from_organization_id),
                         db.session.get(Organization, leg.to_organization_id)]
        found = _consent_for(leg)
        consent_state = None
        if found is not None:
            consent_state = snapshot(found)
        bundle = fhir.referral_bundle(view, [o for o in organizations if o is not None],
                                      consent_state)
        return Response(json.dumps(bundle, ensure_ascii=False), mimetype=FHIR_JSON)
