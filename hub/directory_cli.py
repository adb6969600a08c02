"""`hub directory ...`: the directory from the command line (import of the partner grid, HSDS
export and import)."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask.cli import with_appcontext

from hub.adapters.spreadsheet import UnreadableGrid, read_grid
from hub.db import db, utcnow
from hub.directory_import import CREATE, REJECT, UNCHANGED, UPDATE, apply_import, plan_import

_VERBS = {CREATE: "create", UPDATE: "update", UNCHANGED: "unchanged", REJECT: "REJECT"}


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
        verb = _VERBS[outcome.action]
        line = f"line {outcome.line}: {tense if outcome.action in (CREATE, UPDATE) else ''}" \
               f"{verb} «{outcome.name or '?'}»"
        if outcome.reasons:
            line += " — " + "; ".join(outcome.reasons)
        if outcome.near_duplicates:
            line += " — close to: " + ", ".join(outcome.near_duplicates) + " (check it is not " \
                    "the same organization)"
        click.echo(line)
    counts = {action: sum(1 for o in outcomes if o.action == action) for action in _VERBS}
    click.echo(f"{len(outcomes)} rows: {counts[CREATE]} {done}created, {counts[UPDATE]} "
               f"{done}updated, {counts[UNCHANGED]} unchanged, {counts[REJECT]} rejected."
               + ("" if apply_ else " Dry run: nothing written; add --apply to write."))
