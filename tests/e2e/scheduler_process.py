"""A worker process running only the scheduled checks' `CheckScheduler`, for the end-to-end
tests: `python -m tests.e2e.scheduler_process [interval seconds]`, settings from the
environment (HUB_DATABASE_URL, ...).

Prints each leadership change as "<unix time> leader|standby <pid>" on stdout, flushed, and
stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

from hub import create_app
from hub.config import Settings
from hub.followups.scheduler import CheckScheduler


def main() -> None:
    interval = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
    app = create_app(Settings.from_env())

    def announce(leading: bool) -> None:
        state = "leader" if leading else "standby"
        print(f"{time.time():.6f} {state} {os.getpid()}", flush=True)

    scheduler = CheckScheduler.for_app(app, interval=interval, on_leadership_change=announce)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    scheduler.start()
    stop.wait()
    scheduler.shutdown(wait=True)


if __name__ == "__main__":
    main()
