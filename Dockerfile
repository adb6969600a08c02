# The hub's one image: `hub serve` (web, gunicorn), `hub worker` (webhooks and scheduled
# checks) and `hub db upgrade` (migrations) all run from it; docker-compose.yml picks the
# command per service.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

COPY pyproject.toml README.md ./
COPY hub ./hub
COPY webhooks ./webhooks
# Migrations are read from the source tree, next to hub/ (hub/ops.py: MIGRATIONS_DIR), hence
# the editable install: the code stays in /app.
COPY migrations ./migrations
RUN pip install -e .
# The catalogues compiled in the image: the hub runs as a user that may not write them.
RUN pybabel compile -d hub/portal/translations

RUN useradd --system --uid 10001 --home-dir /app maillage \
    && mkdir -p /app/var && chown maillage /app/var
USER maillage

ENV HUB_ENV=production
EXPOSE 8000

# The web's readiness (database reachable, schema at the code's migration head); the worker and
# the one-shot migration services of docker-compose.yml set their own.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=2)"]

ENTRYPOINT ["hub"]
CMD ["serve", "--bind", "0.0.0.0:8000"]
