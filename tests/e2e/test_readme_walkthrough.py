"""The README's walk-through, run as written against `hub run` in a subprocess."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def walkthrough_script() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("<!-- walkthrough:start -->")[1].split("<!-- walkthrough:end -->")[0]
    return "\n".join(re.findall(r"```bash\n(.*?)```", section, flags=re.S))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_readme_walkthrough_works_as_written(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "HUB_ENV": "development",
           "HUB_DATABASE_URL": f"sqlite:///{tmp_path / 'var' / 'hub.sqlite3'}",
           "HUB": f"http://127.0.0.1:{port}"}
    server = subprocess.Popen([str(BIN / "hub"), "run", "--port", str(port)], cwd=tmp_path,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, server.stdout.read().decode()  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "hub run did not become ready"
            time.sleep(0.2)

        result = subprocess.run(["bash", "-euo", "pipefail", "-c", walkthrough_script()],
                                cwd=tmp_path, env=env, capture_output=True, text=True,
                                timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr
        lines = result.stdout.split()
        printed = [line for line in result.stdout.splitlines() if line.strip()]
        assert printed[0] == "active"  # the consent
        assert printed[1].startswith("referral ") and printed[1].endswith(" sent")
        assert printed[2:] == ["referral.sent", "acknowledged", "accepted", "in_progress",
                               "completed", "referral.completed"], lines
    finally:
        server.terminate()
        server.wait(timeout=10)
