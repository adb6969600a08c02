"""`hub`, the one command line entry point (docs/design.md §8).

The command tree is light: defining and listing the commands needs click and Flask's CLI only,
so `hub --help` (and a command's `--help`) answers without importing the models, the API's
schemas, Authlib or httpx.  Each command imports what it needs when it runs, and only the
commands that need the app build it (`with_appcontext`).
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Callable
from typing import Any, NoReturn

import click
from flask import Flask
from flask.cli import FlaskGroup, routes_command, shell_command, with_appcontext

from hub import create_app
from hub.config import Settings
from hub.directory.cli import directory_group
from hub.followups.cli import deadlines_group


def _create_app() -> Flask:
    return create_app(Settings.from_env())


def _echo_json(value: dict[str, Any]) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def _fail(message: str) -> NoReturn:
    click.echo(f"Error: {message}", err=True)
    sys.exit(2)


# Commands the app adds itself (flask-smorest's `openapi`), with their one-line help, so that
# listing them does not build the app; tests/unit/test_cli_tree.py checks this list.
APP_COMMANDS = {"openapi": "OpenAPI commands."}


class HubGroup(FlaskGroup):
    """Flask's group, without building the app to list or find the hub's own commands: Flask's
    lists the app's commands too, which costs every import of the app for a `--help`."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._load_plugin_commands()  # Flask's: commands of installed plugins, as it lists them
        return sorted({*self.commands, *APP_COMMANDS})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in APP_COMMANDS and name not in self.commands:
            return AppCommand(name, APP_COMMANDS[name],
                              lambda parent: super(HubGroup, self).get_command(parent, name))
        return super().get_command(ctx, name)


class AppCommand(click.Command):
    """Stands for a command of the app in the listing; running it (or its `--help`) builds the
    app and hands over to the real command, as Flask's group does."""

    def __init__(self, name: str, short_help: str,
                 load: Callable[[click.Context], click.Command | None]) -> None:
        super().__init__(name, short_help=short_help)
        self.load = load

    def make_context(self, info_name: str | None, args: list[str],
                     parent: click.Context | None = None, **extra: Any) -> click.Context:
        if parent is None:
            raise click.UsageError(f"{self.name} runs as `hub {self.name}`.")
        command = self.load(parent)
        if command is None:  # the app would not build: Flask's group printed why
            parent.fail(f"No such command {self.name!r}.")
        return command.make_context(info_name, args, parent=parent, **extra)


@click.group(cls=HubGroup, create_app=_create_app, add_default_commands=False,
             add_version_option=False, load_dotenv=False)
def main() -> None:
    """Maillage, the referral coordination hub."""


main.add_command(shell_command)
main.add_command(routes_command)
main.add_command(deadlines_group)
main.add_command(directory_group)


# --- serving ----------------------------------------------------------------------------

@main.command("run")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
def run_command(host: str, port: int) -> None:
    """Everything in one process, for the embedded default (SQLite under ./var/).

    Applies pending migrations to the SQLite database first, then serves the portal and API.
    """
    from hub.ops import upgrade_database

    settings = Settings.from_env()
    if settings.is_sqlite:
        upgrade_database(settings.database_url)
        _move_to_person_keys(settings)
    app = create_app(settings)
    from hub.worker import Worker

    worker = Worker(app)  # webhooks and scheduled checks, in this same process
    worker.start()
    click.echo(f"Maillage hub listening on http://{host}:{port} "
               f"(API docs: http://{host}:{port}/api/docs)")
    try:
        serve_embedded(app, host, port, settings.web_threads)
    finally:
        worker.stop()


def serve_embedded(app: Flask, host: str, port: int, threads: int) -> None:
    """The embedded server: waitress threads in this one process (the benchmark uses it too)."""
    import waitress

    waitress.serve(app, host=host, port=port, threads=threads, ident="maillage")


@main.command("serve")
@click.option("--bind", default="127.0.0.1:5000", show_default=True)
@click.option("--workers", type=int, default=None, help="Default: HUB_WEB_WORKERS.")
def serve_command(bind: str, workers: int | None) -> None:
    """The web service only, under gunicorn (production)."""
    from gunicorn.app.base import BaseApplication

    settings = Settings.from_env()
    app = create_app(settings)

    class Server(BaseApplication):
        def load_config(self) -> None:
            self.cfg.set("bind", bind)
            self.cfg.set("workers", workers or settings.web_workers)
            self.cfg.set("threads", settings.web_threads)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("accesslog", None)

        def load(self) -> Flask:
            return app

    Server().run()


@main.command("worker")
@click.option("--metrics-port", type=int, default=None,
              help="Serve this worker's Prometheus metrics (deliveries, queue) on this port.")
def worker_command(metrics_port: int | None) -> None:
    """Outbound webhooks and the scheduled checks, without the web (production; run several
    for redundancy: deliveries are shared out, each check acts once)."""
    import signal
    import threading

    from hub.worker import Worker

    if metrics_port:
        from prometheus_client import start_http_server

        start_http_server(metrics_port)

    worker = Worker(create_app(Settings.from_env()))
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    worker.start()
    click.echo("Maillage worker started: delivering webhooks, running scheduled checks.",
               err=True)
    stop.wait()
    worker.stop()


# --- database ---------------------------------------------------------------------------

@main.group("db")
def db_group() -> None:
    """Database schema (Alembic migrations)."""


def _move_to_person_keys(settings: Settings) -> int:
    """What the key ring still seals of a participant, moved under their own key (after the
    migrations: one of them reads names with the key ring alone)."""
    from hub import models
    from hub.consent import key_rotation

    return key_rotation.move_database_to_person_keys(
        settings.database_url, models.Base.metadata, settings.data_keys, settings.secret_key,
        settings.keystore)


@db_group.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration to HUB_DATABASE_URL."""
    from hub.ops import upgrade_database

    settings = Settings.from_env()
    upgrade_database(settings.database_url)
    click.echo("Database is at the latest migration.")
    moved = _move_to_person_keys(settings)
    if moved:
        click.echo(f"{moved} values moved under their participant's own key.")


@db_group.command("revision")
@click.option("--message", "-m", required=True)
def db_revision(message: str) -> None:
    """For developers: write a new migration from the difference between models and database."""
    from alembic import command

    from hub.ops import migrations_config

    command.revision(migrations_config(Settings.from_env().database_url), message=message,
                     autogenerate=True)


# --- directory, clients and users --------------------------------------------------------

@main.group("org")
def org_group() -> None:
    """Organizations of the directory."""


@org_group.command("create")
@click.option("--name", required=True)
@click.option("--kind", required=True, help="community, regional_partner, "
              "entrepreneurship_agency, cooperative_development, insertion_enterprise, "
              "employer, public_institution, other or coordination.")
@click.option("--region", required=True, help="Québec region code, e.g. 06 (Montréal).")
@click.option("--time-zone", default="America/Toronto", show_default=True,
              help="IANA time zone its deadlines are counted in.")
@click.option("--language", default="fr", show_default=True,
              help="Language of the hub's mails to its contacts: fr or en.")
@with_appcontext
def org_create(name: str, kind: str, region: str, time_zone: str, language: str) -> None:
    """Add an organization; prints it as JSON."""
    from hub.db import db
    from hub.directory.organizations import create_organization

    with db.job_session() as session:
        try:
            organization = create_organization(session, name=name, kind=kind, region=region,
                                               time_zone=time_zone, language=language)
        except ValueError as error:
            _fail(str(error))
        created = _organization_json(organization)
    _echo_json(created)


def _organization_json(organization: Any) -> dict[str, Any]:
    return {"id": organization.id, "name": organization.name, "kind": organization.kind,
            "region": organization.region, "capacity": organization.capacity,
            "time_zone": organization.time_zone, "language": organization.language}


@org_group.command("set")
@click.argument("organization_id")
@click.option("--time-zone", help="IANA time zone its deadlines are counted in, e.g. "
              "America/Halifax (legs sent from now on).")
@click.option("--language", help="Language of the hub's mails to its contacts: fr or en.")
@with_appcontext
def org_set(organization_id: str, time_zone: str | None, language: str | None) -> None:
    """Change an organization's time zone or mail language; prints it as JSON."""
    from hub.db import db
    from hub.directory.organizations import Organization, check_time_zone_and_language

    try:
        check_time_zone_and_language(time_zone, language)
    except ValueError as error:
        _fail(str(error))
    try:
        organization_uuid = uuid.UUID(organization_id)
    except ValueError:
        _fail(f"Not an organization id: {organization_id!r}; see `hub org list`.")
    with db.job_session() as session:
        organization = session.get(Organization, organization_uuid)
        if organization is None:
            _fail(f"No organization with id {organization_id}; see `hub org list`.")
        if time_zone is not None:
            organization.time_zone = time_zone
        if language is not None:
            organization.language = language
        changed = _organization_json(organization)
    _echo_json(changed)


@org_group.command("list")
@with_appcontext
def org_list() -> None:
    """Every organization, one JSON object per line."""
    from sqlalchemy import select

    from hub.db import db
    from hub.directory.organizations import Organization

    with db.job_session() as session:
        for organization in session.scalars(select(Organization).order_by(Organization.name)):
            click.echo(json.dumps({"id": str(organization.id), "name": organization.name,
                                   "kind": organization.kind, "region": organization.region},
                                  ensure_ascii=False))


@main.group("client")
def client_group() -> None:
    """OAuth clients of partner systems."""


@client_group.command("create")
@click.option("--org", "organization_id", required=True, help="Organization id.")
@click.option("--scopes", default="", help='Space-separated, e.g. "referrals:read '
              'referrals:respond". Default: every partner scope.')
@click.option("--name", default="", help="What the system is, for the organization's admins.")
@with_appcontext
def client_create(organization_id: str, scopes: str, name: str) -> None:
    """Add an OAuth client; prints client_id and client_secret (shown this once only)."""
    from hub.accounts import clients
    from hub.db import db
    from hub.directory.organizations import Organization

    with db.job_session() as session:
        try:
            organization = session.get(Organization, uuid.UUID(organization_id))
        except ValueError:
            organization = None
        if organization is None:
            _fail(f"No organization with id {organization_id}; see `hub org list`.")
        try:
            client, secret = clients.create_client(
                session, organization=organization, scopes=scopes.split(), name=name
            )
        except ValueError as error:
            _fail(str(error))
        created = {"client_id": client.client_id, "client_secret": secret,
                   "organization_id": organization.id, "scope": client.scope}
    _echo_json(created)  # only once committed: a secret shown is a secret stored


@client_group.command("revoke")
@click.argument("client_id")
@with_appcontext
def client_revoke(client_id: str) -> None:
    """Revoke a client and every token it holds."""
    from sqlalchemy import select

    from hub.accounts import clients
    from hub.db import db

    with db.job_session() as session:
        client = session.scalar(
            select(clients.OAuthClient).where(clients.OAuthClient.client_id == client_id)
        )
        if client is None:
            _fail(f"No client {client_id}.")
        clients.revoke_client(session, client)
        click.echo(f"Client {client_id} revoked.")


@main.group("user")
def user_group() -> None:
    """People who log in to the portal."""


@user_group.command("create")
@click.option("--org", "organization_id", required=True, help="The organization's id.")
@click.option("--email", required=True)
@click.option("--role", required=True, help="counsellor, partner_staff, org_admin; "
              "coordinator or hub_admin in a coordination body.")
@click.option("--name", default="", help="Shown in the portal and in referral timelines.")
@click.option("--language", type=click.Choice(["fr", "en"]), default="fr", show_default=True)
@click.option("--form", "french_form", type=click.Choice(["feminine", "masculine", "neutral"]),
              default="neutral", show_default=True,
              help="How French pages address the user: « Conseillère », « Conseiller » or "
                   "« Personne conseillère ».")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input "
              "instead of asking for it.")
@with_appcontext
def user_create(organization_id: str, email: str, role: str, name: str, language: str,
                french_form: str, password_stdin: bool) -> None:
    """Add a portal user; prints it as JSON (never the password)."""
    from hub.accounts import users
    from hub.db import db
    from hub.directory.organizations import Organization

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        org_uuid = uuid.UUID(organization_id)
    except ValueError:
        _fail(f"Not an organization id: {organization_id!r}.")
    with db.job_session() as session:
        organization = session.get(Organization, org_uuid)
        if organization is None:
            _fail(f"No organization with id {organization_id}.")
        try:
            user = users.create_user(session, organization=organization, email=email,
                                     role=role, password=password, name=name,
                                     language=language, french_form=french_form)
        except (ValueError, users.WeakPassword) as error:
            _fail(str(error))
        created = {"id": user.id, "email": user.email, "name": user.name, "role": user.role,
                   "french_form": user.french_form, "organization_id": organization.id,
                   "organization": organization.name}
    _echo_json(created)


# --- scheduled checks and data keys --------------------------------------------------------

@main.group("checks")
def checks_group() -> None:
    """The scheduled checks (consent expiry, ...)."""


@checks_group.command("run")
@click.option("--now", "now_text", default=None, metavar="ISO-8601",
              help="Development only: run the checks as of this moment, to try them out.")
@with_appcontext
def checks_run(now_text: str | None) -> None:
    """One pass of every scheduled check, now; prints how many items each handled."""
    from datetime import UTC, datetime

    from flask import current_app

    from hub.followups import tick

    now = None
    if now_text is not None:
        if current_app.config["HUB_SETTINGS"].is_production:
            _fail("--now is for trying checks out in development; production runs them now.")
        try:
            now = datetime.fromisoformat(now_text)
        except ValueError:
            _fail(f"--now must be an ISO-8601 moment such as 2027-01-15T09:00:00-05:00, "
                  f"not {now_text!r}.")
        now = now if now.tzinfo else now.replace(tzinfo=UTC)
    handled = tick.run_once(current_app.extensions["hub_db"][1], now,
                            public_url=current_app.config["HUB_SETTINGS"].public_url)
    _echo_json(handled)
    if any(count < 0 for count in handled.values()):
        sys.exit(1)


@main.group("data")
def data_group() -> None:
    """Personal data at rest."""


@data_group.command("rotate-keys")
@with_appcontext
def data_rotate_keys() -> None:
    """Re-encrypt personal data with the first key of HUB_DATA_KEYS (then old keys can go);
    wrap the participants' own keys again with it; seal under each participant's own key what
    is not yet."""
    from hub import models
    from hub.consent import key_rotation
    from hub.db import db
    from hub.privacy import keystore

    with db.job_session() as session:
        total = key_rotation.rotate_all(
            session, models.Base.metadata,
            lambda column, done: click.echo(f"{column}: {done} re-encrypted", err=True))
    rewrapped = keystore.current().rewrap_all()
    with db.job_session() as session:
        moved = key_rotation.move_to_person_keys(
            session, models.Base.metadata,
            lambda column, done: click.echo(f"{column}: {done} sealed per person", err=True))
    click.echo(f"{total} values re-encrypted with the current key.")
    click.echo(f"{rewrapped} participants' keys wrapped again with the current key.")
    click.echo(f"{moved} values moved under their participant's own key.")


@data_group.command("reindex-participants")
@with_appcontext
def data_reindex_participants() -> None:
    """Compute again the blind indexes and search terms of every participant (after
    HUB_SECRET_KEY changed: until then duplicates and searches find no one)."""
    from hub.db import db
    from hub.referrals import participants

    with db.job_session() as session:
        total = participants.reindex_all(session)
    click.echo(f"{total} participants indexed again.")


@main.command("demo")
@click.option("--reset", is_flag=True,
              help="Development only: empty the database first (every table removed and made "
                   "again), then fill it.")
@with_appcontext
def demo_command(reset: bool) -> None:
    """Fill an empty database with a small realistic network and months of history; prints
    each organization's OAuth client credentials (shown this once)."""
    from flask import current_app

    from hub import demo
    from hub.db import db

    if reset:
        settings = current_app.config["HUB_SETTINGS"]
        if settings.is_production:
            _fail("hub demo --reset empties the database: it is for development only "
                  "(HUB_ENV is production).")
        db.engine.dispose()
        demo.empty_database(settings.database_url)
    try:
        with db.job_session() as session:
            members = demo.fill(session)
    except demo.NotEmpty as error:
        _fail(f"{error} To start again in development: hub demo --reset")
    _echo_json({"organizations": members})
    click.echo(
        "\nGet a token for one of them:\n  curl -s -u CLIENT_ID:CLIENT_SECRET "
        "-d grant_type=client_credentials http://127.0.0.1:5000/oauth/token\n"
        "then call the API with Authorization: Bearer <token> (docs: /api/docs).\n"
        f"\nOr log in to the portal at http://127.0.0.1:5000/login with a portal user's email "
        f"(see portal_users) and the demo password {demo.DEMO_PASSWORD}",
        err=True,
    )
