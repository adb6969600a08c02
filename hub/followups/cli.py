"""`hub deadlines ...`: the deadline policies (docs/design.md §6) from the command line.

Apart from `hub.followups.policies`, whose models and queries load only when a command runs, so that
`hub --help` does not pay for SQLAlchemy.
"""

from __future__ import annotations

import getpass
import json
import sys
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import click
from flask.cli import with_appcontext

from hub.followups.deadlines import CHECKS, MAX_BUSINESS_DAYS, PATHWAYS, PRIORITIES


def _fail(message: str) -> None:
    click.echo(f"Error: {message}", err=True)
    sys.exit(2)


def _organization_option(value: str | None) -> uuid.UUID | None:
    if value is None:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        _fail(f"--org must be an organization id (see `hub org list`), not {value!r}.")
    return None  # unreachable


def _cli_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no user name in some containers
        return "cli"


_scope_options = [
    click.option("--check", required=True, type=click.Choice(CHECKS)),
    click.option("--priority", required=True, type=click.Choice(PRIORITIES)),
    click.option("--org", "organization", default=None, metavar="ID",
                 help="Receiving organization id. Default: any organization."),
    click.option("--pathway", default=None, type=click.Choice(PATHWAYS),
                 help="Default: any pathway."),
]


Decorated = TypeVar("Decorated", bound=Callable[..., Any])


def _with_scope_options(command: Decorated) -> Decorated:
    """The options naming a rule's scope, on a command's function (before it is a command)."""
    for option in reversed(_scope_options):
        command = option(command)
    return command


@click.group("deadlines")
def deadlines_group() -> None:
    # The help text is pinned (tests/unit/test_cli_tree.py): "DESIGN §6" is docs/design.md §6.
    """Deadline policies: business days to acknowledge, decide and start (DESIGN §6)."""


@deadlines_group.command("set")
@_with_scope_options
@click.option("--days", required=True, type=click.IntRange(0, MAX_BUSINESS_DAYS),
              help="Business days (Québec holidays excluded).")
@with_appcontext
def deadlines_set(check: str, priority: str, organization: str | None, pathway: str | None,
                  days: int) -> None:
    """Set the rule for a scope (replacing any); prints it as JSON."""
    from hub.db import db
    from hub.errors import Invalid
    from hub.followups.policies import as_dict, set_policy

    try:
        with db.job_session() as session:
            rule = set_policy(session, organization_id=_organization_option(organization),
                              pathway=pathway, check=check, priority=priority,
                              business_days=days, actor=_cli_actor())
            shown = as_dict(rule)
    except Invalid as error:
        _fail(str(error))
    click.echo(json.dumps(shown, ensure_ascii=False))


@deadlines_group.command("list")
@click.option("--org", "organization", default=None, metavar="ID",
              help="Only this organization's rules.")
@with_appcontext
def deadlines_list(organization: str | None) -> None:
    """The rules, one JSON object per line: hub-wide first, then by organization."""
    from hub.db import db
    from hub.followups.policies import as_dict, list_policies

    with db.job_session() as session:
        rules = [as_dict(r) for r in list_policies(session, _organization_option(organization))]
    rules.sort(key=lambda r: (r["organization_id"] or "", r["pathway"] or "",
                              CHECKS.index(str(r["check"])),
                              PRIORITIES.index(str(r["priority"]))))
    for rule in rules:
        click.echo(json.dumps(rule, ensure_ascii=False))


@deadlines_group.command("remove")
@_with_scope_options
@with_appcontext
def deadlines_remove(check: str, priority: str, organization: str | None,
                     pathway: str | None) -> None:
    """Remove the rule for exactly this scope; the next most specific one applies."""
    from hub.db import db
    from hub.followups.policies import remove_policy

    with db.job_session() as session:
        removed = remove_policy(session, organization_id=_organization_option(organization),
                                pathway=pathway, check=check, priority=priority)
    if not removed:
        _fail("No rule for this scope; see `hub deadlines list`.")
    click.echo("Rule removed.")
