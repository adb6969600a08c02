"""A real HTTP server for end-to-end tests: the app under test, served by waitress (the server
of `hub run`) on a free loopback port."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from flask import Flask
from waitress.server import create_server


@pytest.fixture(scope="session")
def base_url(app: Flask) -> Iterator[str]:
    server = create_server(app, host="127.0.0.1", port=0, threads=16)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.effective_port}"
    server.close()
