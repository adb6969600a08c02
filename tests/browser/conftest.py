"""Browser tests of the portal: one `hub run` server process for the whole session (SQLite in
a temporary folder), Debian's chromium driven by Playwright through `executable_path` (no
browser download, ever), screenshots written to ./test-artifacts/.

`make test` installs chromium when missing (scripts/test-browser.sh) and sets
HUB_REQUIRE_BROWSER, so a missing browser fails there instead of skipping.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from flask import Flask

from hub import create_app, crypto
from hub.config import Settings
from hub.ops import upgrade_database

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
HUB = str(Path(sys.executable).parent / "hub")
SECRET = "browser-test-secret-" + "y" * 32


def _chromium() -> str:
    path = os.environ.get("HUB_TEST_CHROMIUM", "/usr/bin/chromium")
    if not os.access(path, os.X_OK):
        if os.environ.get("HUB_REQUIRE_BROWSER"):
            pytest.fail(f"HUB_REQUIRE_BROWSER is set but no chromium at {path}")
        pytest.skip("browser tests need Debian's chromium (make test installs it)")
    return path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Hub:
    base_url: str
    app: Flask  # same database and secret as the server: to arrange data and read results


@pytest.fixture(scope="session")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    folder = tmp_path_factory.mktemp("browser-hub")
    url = f"sqlite:///{folder / 'hub.sqlite3'}"
    upgrade_database(url)
    port = _free_port()
    env = {**os.environ, "HUB_DATABASE_URL": url, "HUB_SECRET_KEY": SECRET,
           "HUB_MAIL_DIR": str(folder / "mail"), "HUB_LOG_LEVEL": "WARNING",
           "HUB_PUBLIC_URL": f"http://127.0.0.1:{port}"}
    log = (folder / "server.log").open("w")
    server = subprocess.Popen([HUB, "run", "--port", str(port)], env=env, stdout=log,
                              stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            pytest.fail(f"hub run did not start: {(folder / 'server.log').read_text()[-2000:]}")
        time.sleep(0.2)
    ring = crypto._current
    app = create_app(Settings(env="test", database_url=url, secret_key=SECRET,
                              log_level="WARNING"))
    crypto._current = ring  # the key ring is process-wide: leave the other tests theirs
    yield Hub(base_url, app)
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
    log.close()
    app.extensions["hub_db"][0].dispose()


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    executable = _chromium()
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        # --no-sandbox: chromium's sandbox refuses to run as root, as in CI containers.
        browser = playwright.chromium.launch(executable_path=executable, headless=True,
                                             args=["--no-sandbox"])
        yield browser
        browser.close()
