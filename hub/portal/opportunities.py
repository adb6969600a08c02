"""Opportunities in the portal (docs/design.md §12): counsellors browse the open ones by region
and pathway and refer a candidate to one (the referral form, with the publisher as receiver and
`opportunity_id` set); organizations allowed to publish do so, follow their candidates and
withdraw an offer; every organization chooses the regions it follows and the daily mail.
The use cases are the API's (`hub.opportunities.publishing`)."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

from flask import flash, redirect, request, url_for
from flask_babel import gettext as _
from sqlalchemy import func, select
from werkzeug import Response

from hub.accounts.form_tokens import FormExpired
from hub.accounts.users import RECEIVING_ROLES, SENDING_ROLES
from hub.api.common import aware_datetime, pseudonym_key
from hub.api.opportunities import OpportunityIn
from hub.consent.visibility import Reader
from hub.db import db, utcnow
from hub.directory.organizations import QUEBEC_REGIONS, Organization
from hub.errors import DomainError, Invalid, NotFound
from hub.opportunities import offers, publishing
from hub.opportunities.offers import ClosedReason, Kind, Opportunity, OpportunityStatus
from hub.portal import forms, paging
from hub.portal.common import (
    caller,
    current_user,
    login_required,
    message_of,
    page,
    portal_blueprint,
    status_of,
)
from hub.portal.labels import label, language_name
from hub.portal.legs import leg_rows
from hub.referrals import participants
from hub.referrals.legs import OPEN_STATUSES, Referral
from hub.referrals.lifecycle import Pathway

blp = portal_blueprint("opportunity_pages", __name__)

# Who works with opportunities in the portal: those who refer (counsellors) and those who
# answer referrals (partner staff) — a regional partner's staff publishes.
USER_ROLES = SENDING_ROLES | RECEIVING_ROLES
SHOWN = 50
# The publish form's fields read as lists (`forms.load`): the pathways ticked, the language
# codes typed in one field and split.
OFFER_LISTS = ("pathways", "languages")


def _rows(found: list[Opportunity]) -> list[dict[str, Any]]:
    """What a list or a page shows of each opportunity: its fields, publisher and places left."""
    taken = offers.places_taken(db.session, [o.id for o in found])
    names = dict(db.session.execute(select(Organization.id, Organization.name).where(
        Organization.id.in_({o.organization_id for o in found}))).all())
    return [{**offers.view(o), "id": o.id, "starts_on": o.starts_on, "closes_on": o.closes_on,
             "publisher": names.get(o.organization_id, ""),
             "places_left": max(o.places - taken.get(o.id, 0), 0),
             "region_name": QUEBEC_REGIONS.get(o.region, o.region),
             "language_names": [language_name(code) for code in o.languages],
             "ours": o.organization_id == caller().organization_id} for o in found]


def _may_publish() -> bool:
    organization = db.session.get(Organization, caller().organization_id)
    return organization is not None and organization.kind in offers.PUBLISHER_KINDS


@blp.get("/opportunities")
@login_required(USER_ROLES)
def browse() -> Response:
    """Open opportunities of the network, newest first, by region and pathway; a page at a
    time. The filters are a GET form: they stay in the address and in the form."""
    filters = {"region": request.args.get("region", ""),
               "pathway": request.args.get("pathway", "")}
    after = paging.position(aware_datetime, uuid.UUID)
    error, status, found = None, 200, []
    try:
        found = publishing.browse(db.session, caller(), region=filters["region"] or None,
                                  pathway=filters["pathway"] or None,
                                  after=(after[0], after[1]) if after else None,
                                  limit=SHOWN + 1)
    except Invalid:  # a region or pathway typed into the address
        error, status = _("Choose the region and the pathway from the lists."), 422
    shown, next_page = paging.cut(found, lambda o: (o.published_at, o.id), SHOWN)
    return page("portal/opportunities.html", status, error=error, filters=filters,
                opportunities=_rows(shown), regions=QUEBEC_REGIONS, pathways=list(Pathway),
                next_page=next_page, first_page=paging.first_page(),
                may_publish=_may_publish())


@blp.get("/opportunities/<uuid:opportunity_id>")
@login_required(USER_ROLES)
def detail(opportunity_id: uuid.UUID) -> Response:
    """One opportunity: what it is, and the button that refers a person to it."""
    opportunity = publishing.get(db.session, caller(), opportunity_id)
    return page("portal/opportunity.html", opportunity=_rows([opportunity])[0],
                may_refer=current_user().role in SENDING_ROLES)


@blp.get("/opportunities/<uuid:opportunity_id>/refer")
@login_required(SENDING_ROLES)
def choose_participant(opportunity_id: uuid.UUID) -> Response:
    """Whom to refer: the organization's participants (or those a search finds), each a link
    to the referral form for this opportunity."""
    opportunity = _open(opportunity_id)
    query = request.args.get("q", "").strip()[:200]
    found = participants.search(db.session, caller().organization_id, query, limit=SHOWN)
    reader = Reader(db.session, caller(), pseudonym_key())
    return page("portal/opportunity_refer.html", opportunity=_rows([opportunity])[0],
                participants=[reader.participant(p) for p in found if p.erased_at is None],
                q=request.args.get("q", ""))


def _publish_form(status: int = 200, **context: Any) -> Response:
    context.setdefault("bad", set())
    context.setdefault("form_token", forms.token())
    return page("portal/opportunity_new.html", status, regions=QUEBEC_REGIONS,
                pathways=list(Pathway), kinds=list(Kind), **context)


@blp.route("/opportunities/new", methods=["GET", "POST"])
@login_required(USER_ROLES)
def publish() -> Response:
    """Publish an opportunity (regional partners, employers, insertion enterprises,
    entrepreneurship agencies). A refusal shows the form again as typed, each field at fault
    marked with what to fix."""
    if not _may_publish():
        return page("portal/message.html", 403, title=_("Publish an opportunity"),
                    message=_("Only regional partners, employers, insertion enterprises and "
                              "entrepreneurship agencies publish opportunities. Your "
                              "organization can browse them and refer candidates."))
    organization = db.session.get(Organization, caller().organization_id)
    if request.method == "GET":
        return _publish_form(values={"region": organization.region if organization else "",
                                     "languages": "fr", "places": "1", "kind": "job"})
    form = request.form.copy()
    languages = [code.strip() for code in
                 request.form.get("languages", "").replace(",", " ").split() if code.strip()]
    form.setlist("languages", languages)
    values = {**request.form.to_dict(), "pathways": request.form.getlist("pathways")}
    try:
        answer = forms.claim()
    except FormExpired:
        db.session.rollback()
        return _publish_form(values=values, form_token=forms.token(fresh=True),
                             error=_("This form had expired. Check what it shows and send it "
                                     "again."))
    if answer is not None:
        return answer
    data, bad = forms.load(OpportunityIn(), form, lists=OFFER_LISTS)
    if data is None:
        db.session.rollback()  # the token's claim too: the corrected form is sent with it
        return _publish_form(422, values=values, bad=bad,
                             error=_("Check the fields marked below."))
    try:
        opportunity = publishing.publish(db.session, caller(), **data)
    except DomainError as error:
        db.session.rollback()
        return _publish_form(status_of(error), values=values,
                             bad=set(error.errors) if isinstance(error, Invalid) else set(),
                             error=message_of(error))
    target = url_for("opportunity_pages.detail", opportunity_id=opportunity.id)
    forms.created(target)
    flash(_("Opportunity published: the organizations following the region hear of it."),
          "success")
    return redirect(target)


@blp.get("/opportunities/mine")
@login_required(USER_ROLES)
def mine() -> Response:
    """The organization's opportunities, open ones first then the newest: per opportunity,
    how many candidates were referred and where their referrals stand."""
    own = list(db.session.scalars(
        select(Opportunity).where(Opportunity.organization_id == caller().organization_id)
        .order_by(Opportunity.status.desc(), Opportunity.published_at.desc()).limit(200)))
    counts: dict[uuid.UUID, Counter[str]] = {o.id: Counter() for o in own}
    for opportunity_id, status, number in db.session.execute(
            select(Referral.opportunity_id, Referral.status, func.count())
            .where(Referral.opportunity_id.in_(counts))
            .group_by(Referral.opportunity_id, Referral.status)):
        if opportunity_id is not None:  # always, by the where clause; for the type checker
            counts[opportunity_id][status] = number
    rows = _rows(own)
    for row in rows:
        row["counts"] = sorted(counts[row["id"]].items())
        row["candidates"] = sum(counts[row["id"]].values())
    return page("portal/opportunities_mine.html", opportunities=rows,
                may_publish=_may_publish())


@blp.get("/opportunities/<uuid:opportunity_id>/candidates")
@login_required(USER_ROLES)
def candidates(opportunity_id: uuid.UUID) -> Response:
    """The candidates referred to one of the organization's opportunities (404 for any other
    organization's): counts per status and the legs, each a link to its page, where the
    person is shown as the visibility rules allow."""
    found = publishing.candidates(db.session, caller(), opportunity_id)
    legs = list(db.session.scalars(
        select(Referral).where(Referral.id.in_([leg.referral_id for leg in found.legs]))
        .order_by(Referral.created_at, Referral.id)))
    # The inbox's rows: the person's name where the organization may read it (the read
    # logged), a pseudonym and why otherwise.
    return page("portal/opportunity_candidates.html",
                opportunity=_rows([found.opportunity])[0],
                counts=sorted(found.counts.items()),
                legs=leg_rows(legs, utcnow(), Reader(db.session, caller(), pseudonym_key())))


@blp.route("/opportunities/<uuid:opportunity_id>/withdraw", methods=["GET", "POST"])
@login_required(USER_ROLES)
def withdraw(opportunity_id: uuid.UUID) -> Response:
    """Withdraw one of the organization's opportunities, after a page asking to confirm;
    referrals already sent for it go on."""
    if request.method == "GET":
        found = publishing.candidates(db.session, caller(), opportunity_id)  # 404 if not ours
        return page("portal/opportunity_withdraw.html",
                    opportunity=_rows([found.opportunity])[0],
                    open_legs=sum(1 for leg in found.legs if leg.status in OPEN_STATUSES))
    withdrawn = publishing.withdraw(db.session, caller(), opportunity_id)  # 404 if not ours
    if withdrawn.closed_reason != ClosedReason.WITHDRAWN.value:
        # Closed meanwhile (its places filled, its date passed): the withdrawal changed nothing.
        flash(_("This opportunity had already closed (%(reason)s): nothing changed.",
                reason=label("closed_reason", withdrawn.closed_reason)), "info")
    else:
        flash(_("Opportunity withdrawn: it no longer takes candidates. Referrals already sent "
                "for it go on."), "success")
    return redirect(url_for("opportunity_pages.mine"))


@blp.route("/opportunities/regions", methods=["GET", "POST"])
@login_required(USER_ROLES)
def regions() -> Response:
    """The regions the organization follows: their new opportunities in its feed and
    webhooks, and, if asked, in a daily mail (`hub.opportunities.daily_mail` says to whom)."""
    follows = publishing.followed_regions(db.session, caller())
    chosen = ({f.region for f in follows} if request.method == "GET"
              else set(request.form.getlist("regions")))
    daily = (any(f.daily_mail for f in follows) if request.method == "GET"
             else bool(request.form.get("daily_mail")))
    if request.method == "POST":
        try:
            publishing.follow_regions(db.session, caller(), sorted(chosen), daily)
        except DomainError as error:
            db.session.rollback()
            return page("portal/opportunity_regions.html", status_of(error),
                        error=message_of(error), regions=QUEBEC_REGIONS, chosen=chosen,
                        daily_mail=daily)
        flash(_("Followed regions recorded.") if chosen
              else _("Your organization no longer follows any region."), "success")
        return redirect(url_for("opportunity_pages.regions"))
    return page("portal/opportunity_regions.html", regions=QUEBEC_REGIONS, chosen=chosen,
                daily_mail=daily)


def for_referral(opportunity_id: str | None) -> Opportunity | None:
    """The opportunity a referral form is for (`?opportunity_id=`, or the posted field), or
    None; an unknown one is a 404 page, a closed one a 409 that says so."""
    if not opportunity_id:
        return None
    try:
        identifier = uuid.UUID(opportunity_id)
    except ValueError:
        raise NotFound("opportunity", opportunity_id[:40]) from None
    return _open(identifier)


def _open(opportunity_id: uuid.UUID) -> Opportunity:
    """The opportunity, if it still takes candidates (else the 409 page that says so)."""
    opportunity = publishing.get(db.session, caller(), opportunity_id)
    if opportunity.status != OpportunityStatus.OPEN.value:
        raise offers.OpportunityClosed(opportunity.id, opportunity.closed_reason)
    return opportunity


def summary(opportunity: Opportunity) -> dict[str, Any]:
    """What the referral form and the leg page say of the opportunity."""
    return _rows([opportunity])[0]
