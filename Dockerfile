# syntax=docker/dockerfile:1
# One image for every process of the platform; the command picks the process:
#   uvicorn services.<name>.main:create_app --factory --host 0.0.0.0 --port 800N   (a service)
#   uvicorn gateway.main:create_app --factory --host 0.0.0.0 --port 8000          (the gateway)
#   python -m shared.migrations <name> ...                                        (migrations)
# docker-compose.yml and deploy/k8s set the command, probes and settings of each.
# The build context needs a .dockerignore that leaves out .venv/, .data/ and .git/.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- dependencies: the runtime part of uv.lock, every file checked against its hash ------------
# requirements/runtime.txt is `uv export --no-default-groups` of uv.lock (`make lock` writes it):
# [project].dependencies and what they pull in, none of the dependency groups (test, bench, lint,
# devstack, lock). --no-deps: the file is the whole set; `pip check` proves it is complete.
FROM ${PYTHON_IMAGE} AS deps
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /build
COPY requirements/runtime.txt ./
RUN python -m venv /venv \
 && /venv/bin/pip install --require-hashes --only-binary=:all: --no-deps -r runtime.txt \
 && /venv/bin/pip check

# --- application code, without tests, compiled ahead (the root filesystem is read-only) -------
FROM ${PYTHON_IMAGE} AS app
WORKDIR /app
COPY shared shared
COPY services services
COPY gateway gateway
RUN find /app -depth -type d \( -name tests -o -name __pycache__ \) -exec rm -rf {} + \
 && python -m compileall -q /app

# --- runtime ------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="co-creation-platform" \
      org.opencontainers.image.description="Co-creation ideas platform: four services and the GraphQL gateway"
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin app
COPY --from=deps /venv /venv
COPY --from=app /app /app
WORKDIR /app
ENV PATH=/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    ENVIRONMENT=production
# Numeric, so that Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
EXPOSE 8000 8001 8002 8003 8004
CMD ["uvicorn", "gateway.main:create_app", "--factory", "--host", "0.0.0.0", "--port", "8000", "--loop", "uvloop", "--http", "httptools", "--no-access-log"]
