"""Registering the portal: the participant check-in (`/suivi/<token>`) and the receiving
partner's answer page (`/a/<token>`), reached without an account from a link in a mail, and
the portal where counsellors, receiving partners and coordinators log in to do their work:
each page module registers a blueprint here."""

from __future__ import annotations

from flask import Flask, redirect, url_for
from werkzeug import Response

from hub.portal import (
    admin,
    admin_clients,
    admin_directory,
    admin_grid,
    admin_privacy,
    admin_users,
    admin_webhooks,
    answer,
    auth,
    charts,
    checkin,
    common,
    consents,
    directory,
    followups,
    i18n,
    legs,
    loop_closure,
    network,
    opportunities,
    peer_link,
    peers,
    receiving,
    sending,
)


def init_app(app: Flask) -> None:
    """Register the pages.  (Where people reach them, HUB_PUBLIC_URL, is in the app's settings:
    whoever builds a link reads it there or is handed it, e.g. the scheduler.)"""
    # First of all the portal's checks: input no page can store is refused before any view.
    app.before_request(common.refuse_unreadable_input)
    app.register_blueprint(checkin.blp)
    app.register_blueprint(peer_link.blp)
    app.register_blueprint(answer.blp)
    i18n.init_app(app)
    common.init_app(app)
    for module in (auth, sending, consents, receiving, legs, followups, peers, opportunities,
                   loop_closure,
                   network, charts, directory, admin, admin_directory, admin_grid, admin_users,
                   admin_clients,
                   admin_webhooks, admin_privacy):
        app.register_blueprint(module.blp)

    @app.get("/favicon.ico")
    def favicon() -> Response:
        # Browsers ask for it at the root whatever the page says: the portal's icon.
        return redirect(url_for("static", filename="favicon.svg"), 301)
