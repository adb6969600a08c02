"""`hub directory ...`: the directory from the command line (import of the partner grid, HSDS
export and import)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from flask.cli import with_appcontext

# The import's modules (openpyxl, rapidfuzz...), like the database's, load only when a
# directory command runs, so that `hub --help` and every other command start fast.


@click.group("directory")
def directory_group() -> None:
    """The directory of organizations: imports and exports."""


@directory_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--as", "importer", metavar="ORG_ID",
              help="The importing organization: the grid's type of collaboration and notes "
                   "become its relationship notes about each partner.")
@click.option("--apply", "apply_", is_flag=True,
              help="Write the changes (without it: a dry run that only reports).")
@with_appcontext
def import_command(file: Path, importer: str | None, apply_: bool) -> None:
    """Import the partner grid (CSV or XLSX: organization, region, contact person, services,
    type of organization, type of collaboration, notes...).  Reports row by row what is (or
    would be) created, updated, merged or rejected and why, and the kind chosen for each new
    entry; rows already in the directory are left unchanged."""
    import uuid

    from hub.adapters.spreadsheet import UnreadableGrid, read_grid
    from hub.db import db, utcnow
    from hub.directory.grid import is_grid_header
    from hub.directory.grid_import import (
        CREATE,
        MERGE,
        REJECT,
        UNCHANGED,
        UPDATE,
        apply_import,
        plan_import,
    )
    from hub.directory.organizations import Organization

    verbs = {CREATE: "create", UPDATE: "update", UNCHANGED: "unchanged", MERGE: "merge",
             REJECT: "REJECT"}
    try:
        rows = list(read_grid(file, is_grid_header))
    except UnreadableGrid as error:
        click.echo(f"Error: {file}: {error}", err=True)
        sys.exit(2)
    with db.job_session() as session:
        importer_id = None
        if importer is not None:
            try:
                importer_id = uuid.UUID(importer)
            except ValueError:
                importer_id = None
            if importer_id is None or session.get(Organization, importer_id) is None:
                click.echo(f"Error: --as {importer}: no organization has this id (see "
                           "`hub org create` or the portal's directory).", err=True)
                sys.exit(2)
        with click.progressbar(length=len(rows), label="Reading rows", file=sys.stderr) as bar:
            outcomes = plan_import(session, rows, importer_id=importer_id,
                                   progress=bar.update)
        if apply_:
            click.echo("Writing...", err=True)
            apply_import(session, outcomes, source=file.name, now=utcnow(),
                         importer_id=importer_id)
    tense = "" if apply_ else "would "
    done = "" if apply_ else "would be "
    for outcome in outcomes:
        verb = verbs[outcome.action]
        line = f"line {outcome.line}: {tense if outcome.action in (CREATE, UPDATE) else ''}" \
               f"{verb} «{outcome.name or '?'}»"
        if outcome.reasons:
            line += " — " + "; ".join(outcome.reasons)
        if outcome.near_duplicates:
            line += " — close to: " + ", ".join(outcome.near_duplicates) + " (check it is not " \
                    "the same organization)"
        click.echo(line)
    counts = {action: sum(1 for o in outcomes if o.action == action) for action in verbs}
    to_confirm = [str(o.line) for o in outcomes if o.kind_to_confirm]
    if to_confirm:
        click.echo(f"Kind to confirm (entered as other): line {', '.join(to_confirm)}.")
    if importer_id is None and any(o.entry and (o.entry.collaboration or o.entry.notes)
                                   for o in outcomes):
        click.echo("The type of collaboration and notes were not kept: name the importing "
                   "organization with --as ORG_ID to keep them as its relationship notes.")
    click.echo(f"{len(outcomes)} rows: {counts[CREATE]} {done}created, {counts[UPDATE]} "
               f"{done}updated, {counts[UNCHANGED]} unchanged, {counts[MERGE]} merged into "
               f"another row, {counts[REJECT]} rejected."
               + ("" if apply_ else " Dry run: nothing written; add --apply to write."))


@directory_group.command("export-hsds")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path), required=False)
@with_appcontext
def export_hsds_command(file: Path | None) -> None:
    """The whole directory as Open Referral HSDS 3.0 JSON (to FILE, or standard output)."""
    from hub.adapters.hsds import export_directory
    from hub.db import db
    from hub.directory.hsds import export_organizations

    with db.job_session() as session:
        text = json.dumps(export_directory(export_organizations(session)), ensure_ascii=False,
                          indent=2)
    if file is None:
        click.echo(text)
    else:
        file.write_text(text + "\n", encoding="utf-8")
        click.echo(f"Wrote {file}", err=True)


@directory_group.command("import-hsds")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--apply", "apply_", is_flag=True,
              help="Write the changes (without it: a dry run that only reports).")
@with_appcontext
def import_hsds_command(file: Path, apply_: bool) -> None:
    """Import an HSDS 3.0 JSON document (a list of organizations with services, locations and
    contacts); organizations already in the directory as they are stay unchanged."""
    from hub.adapters.hsds import NotHsds
    from hub.db import db, utcnow
    from hub.directory.hsds import import_hsds

    try:
        document = json.loads(file.read_text(encoding="utf-8-sig"))
        # A lone surrogate escape ("\ud800") parses, but is no text a database stores.
        json.dumps(document, ensure_ascii=False).encode("utf-8")
    except (ValueError, RecursionError) as error:  # UnicodeErrors are ValueErrors
        reason = "nested too deeply" if isinstance(error, RecursionError) else error
        click.echo(f"Error: {file} is not JSON the hub can read: {reason}", err=True)
        sys.exit(2)
    with db.job_session() as session:
        try:
            outcomes = import_hsds(session, document, validated_by=f"import:{file.name}"[:200],
                                   apply=apply_, now=utcnow())
        except NotHsds as error:
            click.echo(f"Error: {error}", err=True)
            sys.exit(2)
    for outcome in outcomes:
        reason = f" — {outcome.reason}" if outcome.reason else ""
        click.echo(f"organizations[{outcome.index}]: {outcome.action} «{outcome.name}»{reason}")
    counts = {a: sum(1 for o in outcomes if o.action == a)
              for a in ("create", "update", "unchanged", "reject")}
    click.echo(f"{len(outcomes)} organizations: " + ", ".join(f"{n} {a}" for a, n in
                                                              counts.items())
               + ("." if apply_ else ". Dry run: nothing written; add --apply to write."))
