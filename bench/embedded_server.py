"""`hub run`'s server (waitress, HUB_WEB_THREADS threads) serving bench.baseline_app:app.

Same call as `hub.cli.run_command`; migrations are applied beforehand with `hub db upgrade`.
Usage: python -m bench.embedded_server PORT
"""

from __future__ import annotations

import sys

import waitress

from bench.baseline_app import app
from hub.config import Settings

if __name__ == "__main__":
    waitress.serve(app, host="127.0.0.1", port=int(sys.argv[1]),
                   threads=Settings.from_env().web_threads, ident="maillage")
