"""`hub` commands run inside the test process, for tests of what a command does.

A new `hub` process spends seconds importing the app before the command starts; click's test
runner calls the same command (same parsing, same code, same exit status, stdout and stderr
apart) in this process instead.  The `hub` console script itself, `hub run` and `hub worker`
keep tests that start them as real processes (tests/integration/test_demo.py,
tests/e2e/test_readme_walkthrough.py, tests/e2e/test_webhook_worker.py, tests/browser/).
"""

from __future__ import annotations

import logging
import os
import subprocess
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from click.testing import CliRunner
from flask import Flask, current_app
from flask.cli import ScriptInfo

from hub import create_app, crypto
from hub.cli import main


@contextmanager
def _process_state_kept() -> Iterator[None]:
    """What building an app changes for the whole process (the logging setup, which points at
    the runner's stderr; the key ring of hub.crypto) is put back, as a process ending would."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    ring = crypto._current
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        crypto._current = ring


def run_hub(env: dict[str, str], *args: str, input: str | None = None
            ) -> subprocess.CompletedProcess[str]:
    """`hub ARGS` with exactly the environment `env` (variables absent from it are unset while
    the command runs), as `subprocess.run([hub, *args], env=env, text=True,
    capture_output=True)` would return it."""
    assert not current_app, "outside an app context, or the command would use that app"
    environment: dict[str, Any] = {name: None for name in os.environ}
    environment["FLASK_RUN_FROM_CLI"] = None  # Flask's group sets it; leave it as it was
    environment.update(env)
    apps: list[Flask] = []

    def build_app() -> Flask:
        apps.append(create_app())
        return apps[-1]

    script_info = ScriptInfo(create_app=build_app, load_dotenv_defaults=False)
    with _process_state_kept():
        try:
            result = CliRunner().invoke(main, list(args), input=input, env=environment,
                                        prog_name="hub", obj=script_info)
        finally:
            for app in apps:  # as the end of a process would: no connection left open
                app.extensions["hub_db"][0].dispose()
    stderr = result.stderr
    if result.exc_info is not None and not isinstance(result.exception, SystemExit):
        stderr += "".join(traceback.format_exception(*result.exc_info))  # as Python prints it
    return subprocess.CompletedProcess(["hub", *args], result.exit_code, result.stdout, stderr)
