"""A fresh PostgreSQL database for a benchmark, dropped when the benchmark ends.

Benchmarks that measure commits need a server of their own (fsync on, not the tests' shared
one); several running on the machine at once need different ports and directories.  This is the
one place that starts such a server (`scripts/test-postgres.sh`, which reuses a running one)
and makes and drops a database on it:

    with fresh_postgresql_database("hub_bench", port="54330", directory="/tmp/maillage-pgbench",
                                   fsync=True) as url:
        ...

`HUB_BENCH_PG_PORT` and `HUB_BENCH_PG_DIR`, when set, replace the benchmark's own port and
directory (`bench_server`).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent


def bench_server(default_port: str, default_directory: str) -> tuple[str, str]:
    """The port and data directory of a benchmark's server: its defaults, unless
    `HUB_BENCH_PG_PORT` / `HUB_BENCH_PG_DIR` name others."""
    return (os.environ.get("HUB_BENCH_PG_PORT", default_port),
            os.environ.get("HUB_BENCH_PG_DIR", default_directory))


def start_server(port: str | None = None, directory: str | None = None, *,
                 fsync: bool = True) -> str:
    """Start the PostgreSQL cluster on `port` in `directory` (made at first use; reused when it
    runs already) and return its admin URL.  Without a port and directory: the tests' server
    of `scripts/test-postgres.sh` (fsync off), as `make test` starts it."""
    env = dict(os.environ)
    if port is not None and directory is not None:
        env.update(HUB_PG_PORT=port, HUB_PG_DIR=directory, HUB_PG_FSYNC="on" if fsync else "off")
    return subprocess.run(["bash", "scripts/test-postgres.sh"], cwd=ROOT, check=True, env=env,
                          stdout=subprocess.PIPE, text=True).stdout.strip()


@contextmanager
def fresh_database(admin_url: str, prefix: str = "hub_bench", *,
                   keep: bool = False) -> Iterator[str]:
    """A new database named `<prefix>_<random>` on the server of `admin_url`; its URL.

    Dropped at the end (its connections closed by force), unless `keep`."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        if not keep:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def fresh_postgresql_database(prefix: str = "hub_bench", *, port: str | None = None,
                              directory: str | None = None, fsync: bool = True,
                              keep: bool = False) -> Iterator[str]:
    """Start the server (`start_server`), then a fresh database on it (`fresh_database`)."""
    with fresh_database(start_server(port, directory, fsync=fsync), prefix, keep=keep) as url:
        yield url


@contextmanager
def fresh_hub_database(postgres_admin_url: str | None, prefix: str) -> Iterator[str]:
    """A fresh database for the benchmarks that take `--postgres`: one on that server
    (`fresh_database`), or else SQLite, the embedded default, in a temporary folder."""
    if postgres_admin_url:
        with fresh_database(postgres_admin_url, prefix) as url:
            yield url
    else:
        with tempfile.TemporaryDirectory(prefix=f"maillage-{prefix}-") as folder:
            yield f"sqlite:///{folder}/hub.sqlite3"
