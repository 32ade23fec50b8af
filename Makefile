# Two commands on a fresh machine: `make run` and `make test`. Both install what they need.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
STAMP := $(VENV)/.installed
# uv (pinned in pyproject.toml's `lock` group) installs and locks: into .venv, with this
# checkout's Python, never one it would download.
export UV_PROJECT_ENVIRONMENT := $(CURDIR)/$(VENV)
export UV_PYTHON_DOWNLOADS := never
# Compile the installed packages' bytecode at install time, as pip does: with
# PYTHONDONTWRITEBYTECODE set (as on CI) nothing is cached later, and every process of the
# platform then parses its dependencies anew at start (measured: 2 s more per service start).
export UV_COMPILE_BYTECODE := 1

.PHONY: run test test-fast lint fmt lock install clean-data bench reliability

# The locker first: pip installs the pinned uv, hash-checked (requirements/uv.txt, exported from uv.lock).
$(UV): requirements/uv.txt
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) is required"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r requirements/uv.txt
	@touch $(UV)

# Everything in uv.lock (runtime and every dependency group), each file checked against the
# lock's hashes; --locked refuses a lock that no longer matches pyproject.toml (run `make lock`).
$(STAMP): $(UV) uv.lock pyproject.toml
	$(UV) sync --locked --all-groups --quiet || { echo "uv.lock does not match pyproject.toml (or could not be installed): after editing pyproject.toml run make lock"; exit 1; }
	@# The project's own packages (shared, services, gateway, devstack) import from the repo root.
	@echo "$(CURDIR)" > $$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/co_creation_platform.pth
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(PY) -m devstack run

# The lint gate first (ruff, and mypy --strict over shared, services and gateway), then every tier.
test: lint
	$(PY) -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) -m bench $(if $(PROFILE),--profile $(PROFILE))

# The resilience tier, writing its figures to RELIABILITY.md (`make test` asserts them, writes nothing).
reliability: $(STAMP)
	RELIABILITY_REPORT=1 $(PY) -m pytest tests/resilience $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy shared services gateway

fmt: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# After editing pyproject.toml's dependencies: re-resolve (versions already locked stay unless the
# edit excludes them), then export the hashed requirements the image and the bootstrap install.
lock: $(UV)
	$(UV) lock
	$(UV) export --quiet --frozen --no-default-groups --no-emit-project -o requirements/runtime.txt
	$(UV) export --quiet --frozen --only-group lock --no-emit-project -o requirements/uv.txt

clean-data:
	rm -rf .data
