"""`hub run`'s server (waitress, HUB_WEB_THREADS threads) serving bench.baseline_app:app.

Same call as `hub.cli.run_command` (`hub.cli.serve_embedded`); migrations are applied
beforehand with `hub db upgrade`.
Usage: python -m bench.embedded_server PORT
"""

from __future__ import annotations

import sys

from bench.baseline_app import app
from hub.cli import serve_embedded
from hub.config import Settings

if __name__ == "__main__":
    serve_embedded(app, "127.0.0.1", int(sys.argv[1]), Settings.from_env().web_threads)
