"""docker-compose.yml, the Dockerfile and .env.example stay true to the code.

Docker cannot run where the suite runs, so the files are read instead: every command a
container runs is parsed by the `hub` CLI itself (click), every variable set is one the hub
reads (SETTINGS), every health check asks a route the app has, on the port it listens on.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from flask import Flask

from hub import create_app
from hub.cli import main as hub_cli
from hub.config import SETTINGS, Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
ENV_EXAMPLE = ROOT / ".env.example"
OPERATIONS = ROOT / "docs" / "operations.md"
HUB_VARIABLES = {setting.env for setting in SETTINGS}
LOCAL_URL = re.compile(r"http://127\.0\.0\.1:(\d+)(/[^'\" ]*)")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def hub_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services that run the hub's image (built from the Dockerfile)."""
    return {name: service for name, service in compose["services"].items()
            if "build" in service}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Flask:
    database = tmp_path_factory.mktemp("compose") / "hub.sqlite3"
    return create_app(Settings(env="test", database_url=f"sqlite:///{database}"))


def resolve(args: list[str]) -> tuple[click.Command, click.Context]:
    """The `hub` command that `args` names, with its options parsed as the CLI would; fails
    like the CLI for an unknown command or option."""
    command: click.Command = hub_cli
    path = ["hub"]
    rest = list(args)
    while isinstance(command, click.Group):
        assert rest, f"`{' '.join(path)}` needs a subcommand"
        name = rest.pop(0)
        found = command.get_command(click.Context(command, info_name=path[-1]), name)
        assert found is not None, f"`{' '.join(path)} {name}` is not a hub command"
        command, path = found, [*path, name]
    context = command.make_context(" ".join(path), rest)  # raises on unknown options
    return command, context


def health_urls(test: list[str] | str) -> list[tuple[int, str]]:
    text = test if isinstance(test, str) else " ".join(test)
    return [(int(port), path) for port, path in LOCAL_URL.findall(text)]


def routes(app: Flask) -> set[str]:
    return {rule.rule for rule in app.url_map.iter_rules()}


def test_the_resolver_refuses_what_the_cli_refuses() -> None:
    with pytest.raises(AssertionError, match="not a hub command"):
        resolve(["server"])
    with pytest.raises(click.NoSuchOption):
        resolve(["worker", "--metric-port", "9100"])
    command, context = resolve(["db", "upgrade"])
    assert command.name == "upgrade"


def test_every_hub_service_runs_a_real_hub_command(
        hub_services: dict[str, dict[str, Any]]) -> None:
    assert set(hub_services) == {"migrate", "web", "worker"}
    names = {}
    for name, service in hub_services.items():
        command, _ = resolve(service["command"])
        names[name] = command.name
    assert names == {"migrate": "upgrade", "web": "serve", "worker": "worker"}


def test_every_variable_set_for_the_hub_is_one_it_reads(
        hub_services: dict[str, dict[str, Any]]) -> None:
    for name, service in hub_services.items():
        unknown = set(service.get("environment", {})) - HUB_VARIABLES
        assert not unknown, f"{name} sets variables the hub does not read: {unknown}"
        assert service["env_file"] == ".env"
        # Secrets come from .env only, never written in the compose file.
        assert not {"HUB_SECRET_KEY", "HUB_DATA_KEYS", "HUB_SMTP_PASSWORD"} & set(
            service.get("environment", {})), name
        assert service["environment"]["HUB_ENV"] == "production"
        assert service["environment"]["HUB_DATABASE_URL"].startswith("postgresql+psycopg://")


def test_env_example_names_only_what_the_hub_or_compose_reads() -> None:
    compose_text = COMPOSE.read_text()
    named = re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), flags=re.M)
    assert {"HUB_SECRET_KEY", "HUB_DATA_KEYS", "POSTGRES_PASSWORD"} <= set(named)
    for variable in named:
        if variable.startswith("HUB_"):
            assert variable in HUB_VARIABLES, variable
        else:
            assert "${" + variable in compose_text, f"{variable} is not used by compose"
    # The secrets are left empty: whoever copies the file must choose their own.
    values = dict(re.findall(r"^([A-Z_]+)=(.*)$", ENV_EXAMPLE.read_text(), flags=re.M))
    assert values["HUB_SECRET_KEY"] == values["HUB_DATA_KEYS"] == values["POSTGRES_PASSWORD"] == ""


def test_health_checks_ask_real_routes_on_the_ports_listened_on(
        hub_services: dict[str, dict[str, Any]], app: Flask) -> None:
    _, serve = resolve(hub_services["web"]["command"])
    web_port = int(serve.params["bind"].rsplit(":", 1)[1])
    assert health_urls(hub_services["web"]["healthcheck"]["test"]) == [(web_port, "/readyz")]
    assert "/readyz" in routes(app)
    assert hub_services["web"]["expose"] == [str(web_port)]

    _, worker = resolve(hub_services["worker"]["command"])
    [(port, _path)] = health_urls(hub_services["worker"]["healthcheck"]["test"])
    assert port == worker.params["metrics_port"]  # the worker's own metrics server

    assert hub_services["migrate"]["healthcheck"] == {"disable": True}


def test_readiness_route_answers_in_the_app(app: Flask) -> None:
    from hub.ops import upgrade_database

    upgrade_database(app.config["HUB_SETTINGS"].database_url)
    answer = app.test_client().get("/readyz")
    assert answer.status_code == 200, answer.get_json()


def test_topology_order_and_replicas(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["migrate"]["depends_on"]["db"]["condition"] == "service_healthy"
    assert services["migrate"]["restart"] == "no"
    for name in ("web", "worker"):
        assert services[name]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully")
    assert services["worker"]["deploy"]["replicas"] == 2
    assert services["web"]["deploy"]["replicas"] >= 2
    assert "web:8000" in services["proxy"]["command"]
    assert services["db"]["healthcheck"]["test"][1] == "pg_isready"
    assert "mailpit" in services["mailpit"]["image"]
    assert services["web"]["environment"]["HUB_SMTP_HOST"] == "mailpit"


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1].strip())
            for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def test_dockerfile_entry_point_command_and_health_check_exist(app: Flask) -> None:
    instructions = dockerfile_instructions()
    found = {kind: value for kind, value in instructions}
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    entrypoint = json.loads(found["ENTRYPOINT"])
    assert entrypoint == ["hub"] and scripts["hub"] == "hub.cli:main"
    command, serve = resolve(json.loads(found["CMD"]))
    assert command.name == "serve"
    port = int(serve.params["bind"].rsplit(":", 1)[1])
    assert found["EXPOSE"] == str(port)
    [(health_port, path)] = health_urls(found["HEALTHCHECK"])
    assert (health_port, path) == (port, "/readyz") and path in routes(app)
    for kind, value in instructions:
        if kind == "COPY":
            *sources, _target = value.split()
            for source in sources:
                assert (ROOT / source).exists(), f"COPY {source}: no such file"
    # The migrations sit next to the package, where hub/ops.py looks for them.
    copied = [value.split()[0] for kind, value in instructions if kind == "COPY"]
    assert {"hub", "webhooks", "migrations", "pyproject.toml"} <= set(copied)


def operations_section(heading: str) -> str:
    """The text under `## heading` of docs/operations.md, its ### subsections included."""
    text = OPERATIONS.read_text(encoding="utf-8")
    assert f"\n## {heading}\n" in text, f"docs/operations.md has no section '## {heading}'"
    return text.split(f"\n## {heading}\n")[1].split("\n## ")[0]


def test_configuration_table_is_exactly_the_settings() -> None:
    """The production section points at this table: both directions, so it cannot drift."""
    section = operations_section("Configuration")
    documented = set(re.findall(r"`(HUB_[A-Z_]+)`", section))
    assert documented == HUB_VARIABLES


def test_production_section_describes_the_compose_services(
        compose: dict[str, Any]) -> None:
    section = operations_section("Running in production")
    for name in compose["services"]:
        assert f"`{name}`" in section, name
    for words in ("pg_dump", "HUB_DATA_KEYS", "hub db upgrade", "--scale"):
        assert words in section, words
    assert "(#configuration)" in section
