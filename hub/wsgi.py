"""WSGI entry point for production servers: `gunicorn hub.wsgi:app`."""

from hub import create_app

app = create_app()
