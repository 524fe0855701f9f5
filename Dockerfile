# syntax=docker/dockerfile:1
# madoguchi API / worker image.
#   docker build -t madoguchi .
#   docker run --rm madoguchi madoguchi migrate      (one-shot; needs the MADOGUCHI_* environment)
# The runtime stage holds only the virtualenv with the installed wheel: migrations (infra/db/migrations, incl.
# script.py.mako and versions/*.py) and domain/knowledge/*.yaml ship inside the wheel as package data.

ARG PYTHON_IMAGE=python:3.11-slim

# ---------------------------------------------------------------------------------------------- builder
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_INPUT=1 \
    PYTHONUNBUFFERED=1

# pdqhash has no Linux wheel on PyPI: it is built from source here (C++), in the builder stage only; the runtime
# stage gets the built venv and no compiler.
RUN apt-get update && apt-get install -y --no-install-recommends g++ && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
WORKDIR /src

# Exactly the locked dependencies, each checked against its hash (requirements.lock, generated from
# pyproject.toml with pip-compile; README "Dependencies"). A layer of its own: it changes only with the lock.
COPY requirements.lock ./
RUN --mount=type=cache,target=/root/.cache/pip \
    /opt/venv/bin/pip install --require-hashes --no-deps -r requirements.lock \
 && /opt/venv/bin/pip check

# Sources only (see .dockerignore): the wheel is built from exactly what is copied here, and installed
# without dependencies, so nothing outside the lock comes in.
COPY pyproject.toml ./
COPY api ./api
COPY domain ./domain
COPY infra ./infra

RUN --mount=type=cache,target=/root/.cache/pip \
    /opt/venv/bin/pip wheel --no-deps --wheel-dir /wheels . \
 && /opt/venv/bin/pip install --no-deps /wheels/madoguchi-*.whl \
 && /opt/venv/bin/pip check \
 && /opt/venv/bin/python -c "import infra.db.migrate as m; assert m.head_revision(), 'migrations missing from the wheel'" \
 && /opt/venv/bin/python -c "from infra.knowledge import load_knowledge; load_knowledge()"

# ---------------------------------------------------------------------------------------------- runtime
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="madoguchi" \
      org.opencontainers.image.description="madoguchi consultation-centre backend (API, worker, operator CLI)"

RUN groupadd --system --gid 10001 madoguchi \
 && useradd --system --uid 10001 --gid 10001 --home-dir /app --no-create-home --shell /usr/sbin/nologin madoguchi \
 && mkdir -p /app /var/lib/madoguchi/evidence \
 && chown 10001:10001 /app /var/lib/madoguchi /var/lib/madoguchi/evidence \
 && chmod 700 /var/lib/madoguchi/evidence

COPY --from=builder /opt/venv /opt/venv

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MADOGUCHI_ENV=production \
    MADOGUCHI_STORAGE_DIR=/var/lib/madoguchi/evidence \
    MADOGUCHI_METRICS_PORT=9100 \
    MADOGUCHI_METRICS_HOST=0.0.0.0

WORKDIR /app
# Uploaded evidence lives here: mount a volume (docker-compose.yml does); the rest of the image can be read-only.
VOLUME ["/var/lib/madoguchi/evidence"]
USER 10001:10001
EXPOSE 8000 9100

# Liveness only (/healthz); /readyz also checks the database and the migration head.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; r = urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=3); sys.exit(0 if r.status == 200 else 1)"]

CMD ["madoguchi", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
