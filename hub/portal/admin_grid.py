"""The partner grid uploaded by an organization's admin: the same import as `hub directory
import FILE --as ORG_ID`, with the same dry run first, row by row, before applying.

The uploaded file waits in a private temporary directory between the dry run and the apply
(named by a random token kept in the user's session, removed once applied or after an hour),
and the apply plans it again: the directory may have changed in between.  An organization's
admin adds new entries and its organization's notes; entries already in the directory stay as
their organizations keep them.  A hub administrator's upload also completes those entries,
as the command line does.
"""

from __future__ import annotations

import secrets
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from flask import flash, redirect, request, session, url_for
from flask_babel import gettext as _
from werkzeug import Response

from hub.adapters.spreadsheet import UnreadableGrid, read_grid
from hub.db import db, utcnow
from hub.directory.grid import Reason, is_grid_header
from hub.directory.grid_import import (
    CREATE,
    MERGE,
    REJECT,
    UNCHANGED,
    UPDATE,
    RowOutcome,
    apply_import,
    plan_import,
)
from hub.directory.organizations import Organization
from hub.portal.admin import ADMIN_ROLES, audit, is_hub_admin, managed_organization
from hub.portal.common import login_required, page, portal_blueprint
from hub.portal.labels import label

blp = portal_blueprint("admin_grid", __name__)

SUFFIXES = (".csv", ".xlsx")
KEEP_SECONDS = 3600
ACTIONS = (CREATE, UPDATE, UNCHANGED, MERGE, REJECT)
# Values of a reason that are codes of the hub, said with the portal's words.
_CODED = {"kind": "kind", "old_kind": "kind", "capacity": "capacity",
          "old_capacity": "capacity"}


def _uploads() -> Path:
    directory = Path(tempfile.gettempdir()) / "maillage-grid-uploads"
    directory.mkdir(mode=0o700, exist_ok=True)
    return directory


def _forget_old_uploads(directory: Path) -> None:
    limit = time.time() - KEEP_SECONDS
    for path in directory.iterdir():
        try:
            if path.stat().st_mtime < limit:
                path.unlink()
        except OSError:
            continue  # another request removed it first


def say(reason: str) -> str:
    """A reason of the import in the reader's language (`hub.directory.grid.Reason`)."""
    if not isinstance(reason, Reason):
        return reason
    values: dict[str, Any] = {}
    for name, value in reason.values.items():
        if isinstance(value, Reason):
            values[name] = say(value)
        elif name in _CODED:
            values[name] = label(_CODED[name], value)
        else:
            values[name] = value
    return _(reason.template).format(**values)


def _rows(outcomes: list[RowOutcome]) -> list[dict[str, Any]]:
    return [{"line": o.line, "action": o.action, "name": o.name,
             "reasons": [say(r) for r in o.reasons], "near": o.near_duplicates,
             "to_confirm": o.kind_to_confirm} for o in outcomes]


def _report(organization: Organization, outcomes: list[RowOutcome], *, token: str | None,
            filename: str, applied: bool) -> Response:
    counts = {action: sum(1 for o in outcomes if o.action == action) for action in ACTIONS}
    return page("portal/admin/grid_import.html", organization=organization,
                rows=_rows(outcomes), counts=counts, token=token, filename=filename,
                applied=applied, to_confirm=[o.line for o in outcomes if o.kind_to_confirm],
                updates_entries=is_hub_admin(), bad=set(), error=None)


def _form(organization: Organization, status: int = 200, error: str | None = None
          ) -> Response:
    return page("portal/admin/grid_import.html", status, organization=organization,
                rows=None, error=error, bad={"grid"} if error else set(),
                updates_entries=is_hub_admin())


def _plan(path: Path, organization: Organization) -> list[RowOutcome]:
    """The import of the file for `organization`, as the command line plans it with `--as`
    (entries already in the directory completed only by a hub administrator)."""
    return plan_import(db.session, list(read_grid(path, is_grid_header)),
                       importer_id=organization.id, update_entries=is_hub_admin())


@blp.get("/admin/<uuid:organization_id>/grid")
@login_required(ADMIN_ROLES)
def grid_form(organization_id: uuid.UUID) -> Response:
    return _form(managed_organization(organization_id))


@blp.post("/admin/<uuid:organization_id>/grid")
@login_required(ADMIN_ROLES)
def dry_run(organization_id: uuid.UUID) -> Response:
    """Read the uploaded grid and say, row by row, what importing it would do."""
    organization = managed_organization(organization_id)
    upload = request.files.get("grid")
    filename = Path(upload.filename or "").name if upload else ""
    suffix = Path(filename).suffix.lower()
    if upload is None or not filename:
        return _form(organization, 422, _("Choose the grid's file (CSV or XLSX)."))
    if suffix not in SUFFIXES:
        return _form(organization, 422, _(
            "%(name)s is not a CSV or XLSX file: save the grid from Excel as «Classeur Excel "
            "(.xlsx)» or «CSV (séparateur : point-virgule)».", name=filename))
    directory = _uploads()
    _forget_old_uploads(directory)
    token = secrets.token_urlsafe(24)
    path = directory / f"{token}{suffix}"
    upload.save(path)
    try:
        outcomes = _plan(path, organization)
    except UnreadableGrid:
        path.unlink(missing_ok=True)
        return _form(organization, 422, _(
            "%(name)s cannot be read as a grid: check that it is the CSV or XLSX file saved "
            "from Excel and that a row names the columns (Organisme, Région...).",
            name=filename))
    session["grid_upload"] = {"token": token, "suffix": suffix, "filename": filename,
                              "organization_id": str(organization.id)}
    return _report(organization, outcomes, token=token, filename=filename, applied=False)


@blp.post("/admin/<uuid:organization_id>/grid/apply")
@login_required(ADMIN_ROLES)
def apply(organization_id: uuid.UUID) -> Response:
    """Import the grid the dry run showed (planned again against the directory as it is)."""
    organization = managed_organization(organization_id)
    upload = session.get("grid_upload") or {}
    path = _uploads() / f"{upload.get('token', '')}{upload.get('suffix', '')}"
    if (not upload or request.form.get("token") != upload.get("token")
            or upload.get("organization_id") != str(organization.id) or not path.is_file()):
        flash(_("That dry run is no longer available (an hour has passed, or it was already "
                "applied): upload the grid again."), "error")
        return redirect(url_for("admin_grid.grid_form", organization_id=organization.id))
    try:
        outcomes = _plan(path, organization)
        apply_import(db.session, outcomes, source=upload["filename"], now=utcnow(),
                     importer_id=organization.id)
    finally:
        path.unlink(missing_ok=True)
        session.pop("grid_upload", None)
    audit("directory.grid_imported", organization, upload["filename"])
    return _report(organization, outcomes, token=None, filename=upload["filename"],
                   applied=True)
