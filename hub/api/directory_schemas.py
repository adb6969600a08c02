"""The directory's bodies: an organization's entry as partners read and send it."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from hub.api.common import Input, PageArgs, Timestamp
from hub.db import utcnow
from hub.directory import organizations
from hub.directory.organizations import ContactChannel
from hub.directory.outdated import NOTE_LIMIT as OUTDATED_NOTE_LIMIT
from hub.directory.relationships import COLLABORATION_LIMIT, NOTES_LIMIT
from hub.followups.deadlines import is_time_zone, time_zone_names
from hub.followups.policies import PATHWAYS

REGION = validate.OneOf(list(organizations.QUEBEC_REGIONS))
LANGUAGES = ("fr", "en")
# Names are one line: a CR or LF in a name breaks mail headers, CSV rows and the pages' lists.
def _one_line(text: str) -> bool:
    if not organizations.is_one_line(text):
        raise ValidationError("One line, without control characters (line breaks, tabs...).")
    return True


ONE_LINE = _one_line
ONE_LINE_DOC = {"pattern": organizations.ONE_LINE_PATTERN}


def _time_zone(**kwargs: Any) -> fields.String:  # fields.String's own keywords
    return fields.String(validate=[validate.Length(1, 64), _known_time_zone],
                         metadata={"description": "IANA time zone its deadlines are counted "
                                                  "in (America/Toronto by default).",
                                   "enum": time_zone_names()}, **kwargs)


def _known_time_zone(name: str) -> bool:
    if not is_time_zone(name):
        raise ValidationError(f"Unknown time zone {name!r}: an IANA name such as "
                              "America/Toronto or America/Halifax.")
    return True
LANGUAGE = validate.Regexp(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$",
                           error="A BCP 47 language tag, e.g. fr, en, es, fr-CA.")


def _text(size: int, **kwargs: Any) -> fields.String:  # fields.String's own keywords
    return fields.String(validate=validate.Length(max=size), **kwargs)


class ServiceIn(Input):
    name = fields.String(required=True, validate=[validate.Length(1, 200), ONE_LINE],
                         metadata=ONE_LINE_DOC)
    description = _text(4000, load_default=None, allow_none=True)
    pathways = fields.List(fields.String(validate=validate.OneOf(PATHWAYS)), load_default=list,
                           metadata={"description": "Pathways the service serves."})
    eligibility_notes = _text(4000, load_default=None, allow_none=True)
    languages = fields.List(fields.String(validate=LANGUAGE), load_default=list,
                            metadata={"description": "Languages it is offered in (BCP 47)."})
    # No default: a service listed again keeps its capacity and its date unless given.
    capacity = fields.String(allow_none=True,
                             validate=validate.OneOf(list(organizations.Capacity)), metadata={
        "description": "Room in this service now: open, waitlist or full. Giving it dates it "
                       "(capacity_updated_at)."})
    waitlist_band = fields.String(allow_none=True,
                                  validate=validate.OneOf(list(organizations.WaitlistBand)),
                                  metadata={"description": "How long the wait is."})


class LocationIn(Input):
    name = fields.String(load_default=None, allow_none=True,
                         validate=[validate.Length(max=200), ONE_LINE], metadata=ONE_LINE_DOC)
    address = _text(300, load_default=None, allow_none=True)
    city = _text(120, load_default=None, allow_none=True)
    postal_code = _text(10, load_default=None, allow_none=True)
    region = fields.String(required=True, validate=REGION,
                           metadata={"description": "Québec administrative region code."})


class ContactIn(Input):
    name = fields.String(load_default=None, allow_none=True,
                         validate=[validate.Length(max=200), ONE_LINE], metadata=ONE_LINE_DOC)
    role = _text(200, load_default=None, allow_none=True,
                 metadata={"description": "e.g. conseillère en emploi, direction."})
    email = fields.Email(load_default=None, allow_none=True, validate=validate.Length(max=254))
    phone = _text(40, load_default=None, allow_none=True)
    preferred_channel = fields.String(load_default=None, allow_none=True,
                                      validate=validate.OneOf(list(ContactChannel)))
    # No default: a contact listed again keeps its choices unless the body names them.
    notify_referrals = fields.Boolean(metadata={
        "description": "Mail this contact every new referral to the organization, with a link "
                       "to answer it without an account (default false)."})
    deadline_digests = fields.Boolean(metadata={
        "description": "Mail this contact the missed-deadline digests (default true)."})


class PrivacyOfficerIn(Input):
    name = fields.String(required=True, validate=[validate.Length(1, 200), ONE_LINE],
                         metadata=ONE_LINE_DOC)
    email = fields.Email(required=True, validate=validate.Length(max=320))


class EntryIn(Input):
    """What an organization may change in its entry; lists given replace the entry's lists."""

    name = fields.String(validate=[validate.Length(1, 200), ONE_LINE], metadata=ONE_LINE_DOC)
    kind = fields.String(validate=validate.OneOf(list(organizations.OrganizationKind)))
    region = fields.String(validate=REGION)
    capacity = fields.String(validate=validate.OneOf(list(organizations.Capacity)))
    capacity_until = fields.Date(allow_none=True, metadata={
        "description": "Until when `waitlist` or `full` is expected to last."})
    description = _text(4000, allow_none=True)
    website = fields.URL(allow_none=True, validate=validate.Length(max=300),
                         metadata={"pattern": "^https?://", "description": "An http(s) URL "
                                   "with a host name (a domain or an address)."})
    time_zone = _time_zone()
    language = fields.String(validate=validate.OneOf(LANGUAGES), metadata={
        "description": "Language of the hub's mails to its contacts: fr (default) or en."})
    referral_mails = fields.String(
        validate=validate.OneOf(list(organizations.ReferralMails)), metadata={
            "description": "When contacts marked notify_referrals hear of new referrals: "
                           "immediate (one mail each, default) or daily (one mail at 8:00 in "
                           "the organization's time zone)."})
    privacy_officer = fields.Nested(PrivacyOfficerIn, allow_none=True, metadata={
        "description": "The person in charge of the protection of personal information (Law "
                       "25), shown on the consent form: `name` and `email`; null names nobody."})
    services = fields.List(fields.Nested(ServiceIn), validate=validate.Length(max=200))
    locations = fields.List(fields.Nested(LocationIn), validate=validate.Length(max=200))
    contacts = fields.List(fields.Nested(ContactIn), validate=validate.Length(max=200))


class _CapacityOut(Schema):
    capacity = fields.String(allow_none=True, metadata={"enum": list(organizations.Capacity)})
    waitlist_band = fields.String(allow_none=True,
                                  metadata={"enum": list(organizations.WaitlistBand)})
    capacity_updated_at = Timestamp(allow_none=True)
    capacity_stale = fields.Function(
        lambda service: organizations.capacity_is_stale(service.capacity_updated_at, utcnow()),
        metadata={"description": "The capacity was never given, or is older than 30 days."})


class ServiceOut(_CapacityOut):
    id = fields.UUID()
    name = fields.String()
    description = fields.String(allow_none=True)
    pathways = fields.List(fields.String())
    eligibility_notes = fields.String(allow_none=True)
    languages = fields.List(fields.String())


class LocationOut(Schema):
    id = fields.UUID()
    name = fields.String(allow_none=True)
    address = fields.String(allow_none=True)
    city = fields.String(allow_none=True)
    postal_code = fields.String(allow_none=True)
    region = fields.String()
    region_name = fields.Function(lambda place: organizations.QUEBEC_REGIONS.get(place.region))


class ContactOut(Schema):
    id = fields.UUID()
    name = fields.String(allow_none=True)
    role = fields.String(allow_none=True)
    email = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)
    preferred_channel = fields.String(allow_none=True)
    notify_referrals = fields.Boolean()
    deadline_digests = fields.Boolean()


class OrganizationSchema(Schema):
    id = fields.UUID()
    name = fields.String()
    kind = fields.String(metadata={"enum": list(organizations.OrganizationKind)})
    region = fields.String(metadata={"description": "Québec administrative region code."})
    region_name = fields.Function(lambda org: organizations.QUEBEC_REGIONS.get(org.region))
    capacity = fields.String(metadata={"enum": list(organizations.Capacity)})
    capacity_until = fields.Date(allow_none=True)
    description = fields.String(allow_none=True)
    website = fields.String(allow_none=True)
    privacy_officer = fields.Function(lambda org: {
        "name": org.privacy_officer_name, "email": org.privacy_officer_email}
        if org.privacy_officer_name else None)
    time_zone = fields.String()
    language = fields.String()
    referral_mails = fields.String(metadata={"enum": list(organizations.ReferralMails)})
    services = fields.List(fields.Nested(ServiceOut))
    locations = fields.List(fields.Nested(LocationOut))
    contacts = fields.List(fields.Nested(ContactOut), metadata={
        "description": "Staff of the organization; shown to authenticated partners only."})
    created_at = Timestamp()
    last_validated_at = Timestamp()
    last_validated_by = fields.String(allow_none=True)


class OrganizationPage(Schema):
    items = fields.List(fields.Nested(OrganizationSchema))
    next_cursor = fields.String(allow_none=True)


class OrganizationFilters(PageArgs):
    q = fields.String(validate=validate.Length(1, 200), metadata={
        "description": "Words in the entry (name, services, places, contacts' roles); accents "
                       "and case do not matter: `Montreal` finds `Montréal`."})
    kind = fields.String(validate=validate.OneOf(list(organizations.OrganizationKind)))
    region = fields.String(validate=REGION, metadata={
        "description": "Québec region code, of the organization or one of its locations."})
    pathway = fields.String(validate=validate.OneOf(PATHWAYS),
                            metadata={"description": "Serves this pathway."})
    capacity = fields.String(validate=validate.OneOf(list(organizations.Capacity)))


class RelationshipIn(Input):
    """The caller's organization's note about its collaboration with this organization; both
    fields replace what was written (null or "" clears one)."""

    collaboration = fields.String(required=True, allow_none=True,
                                  validate=validate.Length(max=COLLABORATION_LIMIT), metadata={
        "description": "The collaboration your organization needs with this partner, e.g. "
                       "«Accompagnement à l'arrivée», «Séjours exploratoires»."})
    notes = fields.String(required=True, allow_none=True,
                          validate=validate.Length(max=NOTES_LIMIT),
                          metadata={"description": "Your organization's own notes."})


class RelationshipOut(Schema):
    organization_id = fields.UUID(metadata={"description": "The partner the note is about."})
    collaboration = fields.String(allow_none=True)
    notes = fields.String(allow_none=True)
    updated_by = fields.String(allow_none=True, metadata={
        "description": "user:<id>, client:<id> or import:<file name>; null: never written."})
    updated_at = Timestamp(allow_none=True)


class RelationshipHistory(Schema):
    items = fields.List(fields.Nested(RelationshipOut), metadata={
        "description": "Every version of the note, newest first."})
    next_cursor = fields.String(allow_none=True)


class OutdatedReportIn(Input):
    note = fields.String(load_default=None, allow_none=True,
                         validate=validate.Length(max=OUTDATED_NOTE_LIMIT), metadata={
        "description": "What is out of date, e.g. «La personne-ressource a quitté»."})


class OutdatedReportOut(Schema):
    id = fields.UUID()
    organization_id = fields.UUID(metadata={"description": "The entry reported."})
    reported_by_organization_id = fields.UUID()
    reported_by = fields.String()
    note = fields.String(allow_none=True)
    reported_at = Timestamp()
    resolved_at = Timestamp(allow_none=True, metadata={
        "description": "When the entry was validated again; null while the report is open."})


class OutdatedReportPage(Schema):
    items = fields.List(fields.Nested(OutdatedReportOut))
    next_cursor = fields.String(allow_none=True)
