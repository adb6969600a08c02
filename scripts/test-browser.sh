#!/usr/bin/env bash
# Make sure Debian's chromium is installed for the portal's browser tests, then print its path.
#
# The tests drive it with Playwright through `executable_path`: no browser is ever downloaded
# (never `playwright install`).  Installs the `chromium` package with apt-get when missing.
# Everything but the path goes to stderr.
set -euo pipefail

CHROMIUM="${HUB_CHROMIUM:-/usr/bin/chromium}"

if [ ! -x "$CHROMIUM" ]; then
  echo "Chromium not found at $CHROMIUM: installing Debian's chromium package..." >&2
  if [ "$(id -u)" -ne 0 ]; then
    echo "Need root (or chromium installed) to install chromium." >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq chromium >&2
  CHROMIUM=/usr/bin/chromium
fi

echo "$CHROMIUM"
