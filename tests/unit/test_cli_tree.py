"""The `hub` command tree is pinned, and listing it stays light.

`hub --help` and every `hub X --help` must show exactly what `tests/data/cli/help.txt` holds
(written from the command line as it was before its commands became lazy); and the top-level
help, like each group's, must answer without importing the app's heavy parts (models,
schemas, Authlib, httpx...), which only the commands that need them import when they run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from hub.cli import APP_COMMANDS, main
from tests.hub_cli import run_hub

HELP_SNAPSHOT = Path(__file__).resolve().parents[1] / "data" / "cli" / "help.txt"
WIDTH = 100

# Modules the listing must not need: building the app, the models, the API's schemas, OAuth,
# outbound HTTP, migrations, the scheduler.
HEAVY_MODULES = ("hub.models", "hub.db", "hub.api", "hub.portal", "flask_smorest", "marshmallow",
                 "sqlalchemy", "sqlalchemy.orm", "authlib", "httpx", "alembic", "apscheduler")


def _subcommands(help_text: str) -> list[str]:
    """The names in the "Commands:" section of a help text."""
    _, found, listing = help_text.partition("\nCommands:\n")
    return [line.split()[0] for line in listing.splitlines() if line.startswith("  ")
            and not line.startswith("   ")] if found else []


def help_of_every_command(environment: dict[str, str]) -> str:
    """`hub --help`, then `hub X --help` for every command and subcommand it lists, in one
    text: the tree as a user finds it."""
    runner = CliRunner()
    outputs = []
    paths: list[tuple[str, ...]] = [()]
    while paths:
        path = paths.pop(0)
        result = runner.invoke(main, [*path, "--help"], env=environment, prog_name="hub",
                               terminal_width=WIDTH)
        assert result.exit_code == 0, (path, result.output, result.exception)
        outputs.append(f"$ hub {' '.join((*path, '--help'))}\n{result.output}")
        paths.extend((*path, name) for name in _subcommands(result.output))
    return "\n".join(outputs)


@pytest.fixture
def environment(tmp_path: Path) -> dict[str, str]:
    return {"HUB_ENV": "development", "HUB_DATABASE_URL": f"sqlite:///{tmp_path / 'h.sqlite3'}",
            "HUB_DATA_KEYS": ""}


def test_every_command_option_and_help_text_is_as_pinned(environment: dict[str, str]) -> None:
    assert help_of_every_command(environment) == HELP_SNAPSHOT.read_text(encoding="utf-8")


def test_the_commands_the_app_adds_are_listed_with_their_own_help(
        environment: dict[str, str]) -> None:
    from hub import create_app
    from hub.config import Settings

    app = create_app(Settings.from_env(environment))
    context = click.Context(app.cli)
    assert set(app.cli.list_commands(context)) == set(APP_COMMANDS)
    for name, short_help in APP_COMMANDS.items():
        assert app.cli.get_command(context, name).get_short_help_str(WIDTH) == short_help


def test_an_unknown_command_is_refused_as_before(environment: dict[str, str]) -> None:
    result = CliRunner().invoke(main, ["server"], env=environment, prog_name="hub")
    assert result.exit_code == 2
    assert "No such command 'server'" in result.output


def test_help_does_not_import_the_app(tmp_path: Path) -> None:
    """In a fresh interpreter: the help of the group and of each subgroup, then the list of
    modules loaded."""
    script = (
        "import json, sys\n"
        "from hub.cli import main\n"
        "for args in sys.argv[1:]:\n"
        "    try:\n"
        "        main(args.split(), prog_name='hub')\n"
        "    except SystemExit as exit:\n"
        "        assert exit.code == 0, (args, exit.code)\n"
        "print(json.dumps(sorted(sys.modules)), file=sys.stderr)\n"
    )
    helps = ["--help", *(f"{name} --help" for name in main.commands)]
    done = subprocess.run([sys.executable, "-c", script, *helps], capture_output=True,
                          text=True, timeout=60, cwd=tmp_path,
                          env={**os.environ, "HUB_DATABASE_URL": f"sqlite:///{tmp_path}/h.db"})
    assert done.returncode == 0, done.stderr
    assert "Maillage, the referral coordination hub." in done.stdout
    loaded = set(json.loads(done.stderr.splitlines()[-1]))
    assert "hub.cli" in loaded and "click" in loaded
    assert not loaded & set(HEAVY_MODULES), sorted(loaded & set(HEAVY_MODULES))
    assert not (tmp_path / "h.db").exists()  # nothing opened a database either


def test_a_command_of_the_app_runs_once_the_app_is_built(environment: dict[str, str]) -> None:
    printed = run_hub({**os.environ, **environment}, "openapi", "print")
    assert printed.returncode == 0, printed.stderr
    document = json.loads(printed.stdout)
    assert "/api/v1/referrals" in document["paths"]
    assert run_hub({**os.environ, **environment}, "openapi", "nothing").returncode == 2
