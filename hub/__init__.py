"""Maillage: the referral coordination hub.

`create_app` builds the web application; nothing connects at import time.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from hub.config import Settings


def create_app(settings: Settings | None = None, **flask_config: Any) -> Flask:
    """Build the hub's Flask application from `settings` (default: the environment)."""
    settings = settings or Settings.from_env()
    problems = settings.problems()
    if problems:
        raise RuntimeError("The hub refuses to start: " + " ".join(problems))

    # The portal owns the pages' templates and static files (hub/portal/).
    app = Flask(__name__, template_folder="portal/templates", static_folder="portal/static")
    app.config.update(
        HUB_SETTINGS=settings,
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
    )
    app.config.update(flask_config)
    if settings.trusted_proxies:
        from werkzeug.middleware.proxy_fix import ProxyFix

        # Only the last N forwarded values are believed: those the trusted proxies wrote.
        n = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n)  # type: ignore[method-assign]

    # Imported here, not at the top: every `import hub.x` runs this package's __init__ first,
    # and a command, a worker or a test that imports one module must not load the whole app.
    from hub import crypto, ops
    from hub.adapters import oauth
    from hub.api import app as api
    from hub.db import db
    from hub.portal import app as portal

    # Process-wide: the encrypted column types have no access to the app (see hub.crypto).
    crypto.install(crypto.KeyRing.from_settings(settings.data_keys, settings.secret_key))
    # Each person's key, apart from the database (see hub.privacy.keystore).
    from hub.privacy import keystore

    store = keystore.KeyStore(settings.keystore)
    keystore.install(store)
    app.extensions["hub_keystore"] = store
    from hub.privacy import retention

    retention.configure(months=settings.retention_months,
                        pseudonym_key=settings.secret_key.encode())

    ops.configure_logging(settings.log_level)
    ops.init_app(app)  # first, so request timing includes every later hook (SQLite's turn)
    db.init_app(app)
    oauth.init_app(app)
    api.init_app(app)
    portal.init_app(app)
    return app
