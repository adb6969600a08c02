"""Reading a posted form with the API's own schemas, so a field is valid in the portal exactly
when it is valid in the API; field errors come back as "check this field" in the user's
language (the schemas' messages are written for developers, in English)."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, request
from flask_babel import gettext as _
from marshmallow import Schema, ValidationError
from werkzeug import Response
from werkzeug.datastructures import MultiDict

from hub.accounts import form_tokens
from hub.db import db
from hub.portal.common import current_user

LIST_FIELDS = ("needs", "organization_ids")


def load(schema: Schema, form: MultiDict[str, str],
         lists: tuple[str, ...] = LIST_FIELDS) -> tuple[dict[str, Any] | None, set[str]]:
    """The schema's data from the form (empty fields left out), or the names of the bad fields."""
    raw: dict[str, Any] = {}
    for name in schema.fields:
        if name in lists:
            values = [v.strip() for v in form.getlist(name) if v.strip()]
            if values:
                raw[name] = values
        elif name in form and form[name].strip():
            raw[name] = form[name].strip()
    try:
        return schema.load(raw), set()
    except ValidationError as error:
        messages = error.messages if isinstance(error.messages, dict) else {}
        return None, {str(name).split(".")[0] for name in messages}


def lines(text: str | None) -> list[str]:
    """One need per line of a text area."""
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


TOKEN_FIELD = "form_token"


def token(*, fresh: bool = False) -> str:
    """The one-time token of a form that creates something (`hub.accounts.form_tokens`): the
    one posted when a refused form is shown again (its claim was rolled back with the rest),
    else a new one, saved with the page's transaction: only by an answer that commits (a GET,
    or the 200 that shows an expired form again)."""
    posted = request.form.get(TOKEN_FIELD, "") if request.method == "POST" else ""
    return posted if posted and not fresh else form_tokens.mint(db.session, current_user().id)


def claim() -> Response | None:
    """Claim the posted form's token: None to go ahead and create; else the page of what the
    same form created already (a second click, Back then send again). Raises
    `form_tokens.FormExpired` for a token the hub does not know."""
    earlier = form_tokens.claim(db.session, current_user().id,
                                request.form.get(TOKEN_FIELD, ""))
    if earlier is None:
        return None
    flash(_("This form was sent already: here is what it created. Nothing was created "
                 "twice."), "info")
    return redirect(earlier)


def created(path: str) -> None:
    """Remember the page of what this form created, for a second sending of it."""
    form_tokens.done(db.session, current_user().id, request.form.get(TOKEN_FIELD, ""), path)
