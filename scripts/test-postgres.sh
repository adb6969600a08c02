#!/usr/bin/env bash
# Make sure a throwaway PostgreSQL server runs for the tests, then print its admin URL.
#
# Installs Debian's postgresql package when no server binaries are found, creates a private
# cluster (trust authentication, loopback only) under $HUB_PG_DIR and starts it on $HUB_PG_PORT.
# Safe to run again: a running cluster is reused.  Everything but the URL goes to stderr.
set -euo pipefail

PORT="${HUB_PG_PORT:-54329}"
DIR="${HUB_PG_DIR:-/tmp/maillage-pgtest}"
# Tests do not need durability; benchmarks do (HUB_PG_FSYNC=on) to measure real commits.
FSYNC="${HUB_PG_FSYNC:-off}"

find_bindir() {
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

BINDIR="$(find_bindir)"
if [ -z "$BINDIR" ] || [ ! -x "$BINDIR/initdb" ]; then
  echo "PostgreSQL not found: installing Debian's postgresql package..." >&2
  if [ "$(id -u)" -ne 0 ]; then
    echo "Need root (or PostgreSQL installed) to install PostgreSQL." >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
  BINDIR="$(find_bindir)"
fi

# PostgreSQL refuses to run as root: run it as the postgres user when we are root.
if [ "$(id -u)" -eq 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql postgres
  as_pg() { runuser -u postgres -- "$@"; }
  OWNER=postgres
else
  as_pg() { "$@"; }
  OWNER="$(id -un)"
fi

if [ ! -f "$DIR/PG_VERSION" ]; then
  mkdir -p "$DIR"
  chown "$OWNER" "$DIR"
  chmod 700 "$DIR"
  as_pg "$BINDIR/initdb" -D "$DIR" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >&2
fi

if ! as_pg "$BINDIR/pg_ctl" -D "$DIR" status >/dev/null 2>&1; then
  as_pg "$BINDIR/pg_ctl" -D "$DIR" -l "$DIR/server.log" -w -t 60 start \
    -o "-p $PORT -k $DIR -c listen_addresses=127.0.0.1 -c fsync=$FSYNC -c max_connections=200" >&2
fi

echo "postgresql+psycopg://postgres@127.0.0.1:$PORT/postgres"
