# Relaydesk: every target bootstraps .venv from the pinned requirements first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: venv demo up test lint unit integration e2e bench hostile build clean

$(STAMP): requirements-dev.txt layers/relaydesk/requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade "pip>=24" 2>&1 | grep -v "is ignored" || true
	$(BIN)/pip install --quiet -r requirements-dev.txt 2>&1 | grep -v "is ignored" || true
	$(BIN)/pip install --quiet --no-deps -e . 2>&1 | grep -v "is ignored" || true
	$(BIN)/python -c "import relaydesk, aiosmtplib, aiosmtpd, moto, dkim"  # fail here, not later
	touch $(STAMP)

venv: $(STAMP)

demo: venv
	$(BIN)/python -m local.demo

up: venv
	$(BIN)/python -m local.up

lint: venv
	$(BIN)/ruff check .
	$(BIN)/cfn-lint template.yaml

test: lint
	$(BIN)/python -m pytest -n 2 --dist loadfile tests  # loadfile: a module sharing one local stack or demo run stays on one worker

unit: venv
	$(BIN)/python -m pytest tests/unit

integration: venv
	$(BIN)/python -m pytest tests/integration

e2e: venv
	$(BIN)/python -m pytest tests/e2e

bench: venv
	$(BIN)/python -m bench

# The hostile-mail suite at the size SES lets through (40 MB), with the real parser bounds and the inbound function's
# memory budget (tracemalloc); `make test` runs the same suite small. Minutes, not seconds.
hostile: venv
	RELAYDESK_HOSTILE_SCALE=full $(BIN)/python -m pytest --timeout 900 -v -s tests/unit/inbound/test_inbound_hostile.py

# SAM CLI gets its own virtualenv (requirements-build.txt says why); builds without a container for python3.11.
BUILD_VENV := .venv-build
$(BUILD_VENV)/.installed: requirements-build.txt
	$(PYTHON) -m venv $(BUILD_VENV)
	$(BUILD_VENV)/bin/pip install --quiet -r requirements-build.txt 2>&1 | grep -v "is ignored" || true
	$(BUILD_VENV)/bin/sam --version  # fail here, not later
	touch $@

build: $(BUILD_VENV)/.installed
	SAM_CLI_TELEMETRY=0 $(BUILD_VENV)/bin/sam build --template-file template.yaml
	@# Each built handler must import with the built layer alone on the path (-S: no site-packages), as in Lambda.
	@for fn in .aws-sam/build/*Function; do \
	  PYTHONPATH=.aws-sam/build/RelaydeskLayer/python:$$fn POWERTOOLS_TRACE_DISABLED=true \
	    $(PYTHON) -S -c "import app" || { echo "$$fn: handler does not import from the build"; exit 1; }; \
	done; echo "every handler imports from .aws-sam/build"

clean:
	rm -rf $(VENV) $(BUILD_VENV) .aws-sam .pytest_cache .ruff_cache
