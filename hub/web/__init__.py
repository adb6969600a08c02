"""Server-rendered pages for people who have no account: today the participant check-in
(`/suivi/<token>`), reached from a link in a mail.  The portal's pages will live beside it."""

from __future__ import annotations

from flask import Flask

from hub.checkins import DEFAULT_PUBLIC_URL, set_public_url


def init_app(app: Flask) -> None:
    """Register the pages, and tell the scheduled checks where participants reach them."""
    from hub.web import checkin

    settings = app.config["HUB_SETTINGS"]
    set_public_url(getattr(settings, "public_url", DEFAULT_PUBLIC_URL))
    app.register_blueprint(checkin.blp)
