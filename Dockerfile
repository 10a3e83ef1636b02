# Windmaker API service: the embedded deployment (SQLite + in-process job runner) by
# default; set WINDMAKER_DATABASE_URL (PostgreSQL) and WINDMAKER_BROKER_URL (Redis) to
# scale out, running `windmaker worker` from this same image for the Celery workers.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
# Only what the package needs, so edits elsewhere (tests, docs) keep the layer cached.
COPY pyproject.toml README.md ./
COPY models ./models
COPY optimizer ./optimizer
COPY fixtures ./fixtures
COPY service ./service
COPY adapters ./adapters
COPY api ./api
COPY cli ./cli
COPY bench ./bench
RUN pip install . && rm -rf /src

# Unprivileged user; its home holds the default SQLite database (mount a volume there).
RUN useradd --system --create-home --home-dir /var/lib/windmaker --shell /usr/sbin/nologin windmaker
USER windmaker
WORKDIR /var/lib/windmaker
ENV WINDMAKER_DATABASE_URL=sqlite:////var/lib/windmaker/windmaker.db
VOLUME ["/var/lib/windmaker"]

EXPOSE 8000
# slim has no curl: ask the health endpoint with the standard library.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/v1/health', timeout=4).status == 200 else 1)"]

CMD ["windmaker", "serve", "--host", "0.0.0.0", "--port", "8000"]
