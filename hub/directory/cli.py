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
@click.option("--apply", "apply_", is_flag=True,
              help="Write the changes (without it: a dry run that only reports).")
@with_appcontext
def import_command(file: Path, apply_: bool) -> None:
    """Import the partner grid (CSV or XLSX: organization, region, contact person, services,
    type of collaboration...).  Reports row by row what is (or would be) created, updated or
    rejected and why; rows already in the directory are left unchanged."""
    from hub.adapters.spreadsheet import UnreadableGrid, read_grid
    from hub.db import db, utcnow
    from hub.directory.grid_import import (
        CREATE,
        REJECT,
        UNCHANGED,
        UPDATE,
        apply_import,
        plan_import,
    )

    verbs = {CREATE: "create", UPDATE: "update", UNCHANGED: "unchanged", REJECT: "REJECT"}
    try:
        rows = list(read_grid(file))
    except UnreadableGrid as error:
        click.echo(f"Error: {file}: {error}", err=True)
        sys.exit(2)
    with db.job_session() as session:
        with click.progressbar(length=len(rows), label="Reading rows", file=sys.stderr) as bar:
            outcomes = plan_import(session, rows, progress=bar.update)
        if apply_:
            click.echo("Writing...", err=True)
            apply_import(session, outcomes, source=file.name, now=utcnow())
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
    click.echo(f"{len(outcomes)} rows: {counts[CREATE]} {done}created, {counts[UPDATE]} "
               f"{done}updated, {counts[UNCHANGED]} unchanged, {counts[REJECT]} rejected."
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
