# Relaydesk: every target bootstraps .venv from the pinned requirements first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: venv demo up test lint unit integration e2e browser chromium console bench bench-postfix hostile chaos build arm64-root bench-arch checkov deploy-sandbox deploy-production clean

$(STAMP): requirements-dev.txt layers/relaydesk/requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade "pip>=24" 2>&1 | grep -v "is ignored" || true
	$(BIN)/pip install --quiet -r requirements-dev.txt 2>&1 | grep -v "is ignored" || true
	$(BIN)/pip install --quiet --no-deps -e . 2>&1 | grep -v "is ignored" || true
	$(BIN)/python -c "import relaydesk, aiosmtplib, aiosmtpd, moto, dkim, playwright"  # fail here, not later
	touch $(STAMP)

venv: $(STAMP)

demo: venv
	$(BIN)/python -m local.demo

up: venv
	$(BIN)/python -m local.up

lint: venv
	$(BIN)/ruff check .
	$(BIN)/cfn-lint --include-checks I --non-zero-exit-code informational -- template.yaml  # informational too

test: lint chromium
	$(BIN)/python -m pytest -n 2 --dist loadfile tests  # loadfile: a module sharing one local stack or demo run stays on one worker

# The browser tests drive Debian's Chromium (never a browser Playwright downloads): installed here when missing.
CHROMIUM := /usr/bin/chromium
chromium:
	@test -x $(CHROMIUM) || { echo "installing Debian's chromium for the browser tests (apt-get)"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }
	@$(CHROMIUM) --version

browser: venv chromium
	$(BIN)/python -m pytest tests/browser  # screenshots: test-artifacts/console/

# The admin console's static files (console/dist, committed): rebuilt from console/src with the pinned lockfile.
console:
	cd console && npm ci --no-audit --no-fund && node build.mjs

unit: venv
	$(BIN)/python -m pytest tests/unit

integration: venv
	$(BIN)/python -m pytest tests/integration

e2e: venv
	$(BIN)/python -m pytest tests/e2e

bench: venv bench-postfix
	$(BIN)/python -m bench

# The latency benchmark runs Debian's Postfix (a smarthost and a relay client, its own instances on 127.0.0.1, set
# up by the bench). Installed when missing and possible; without it that benchmark says so and skips its Postfix
# columns. "No configuration": the package leaves the system's own Postfix unconfigured and stopped.
POSTFIX_PACKAGES := postfix sasl2-bin libsasl2-modules
bench-postfix:
	@if command -v postfix >/dev/null 2>&1 && command -v saslpasswd2 >/dev/null 2>&1; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then \
	  echo "bench: Postfix is not installed and cannot be installed here (needs root and apt-get)"; exit 0; fi; \
	echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections; \
	export DEBIAN_FRONTEND=noninteractive; \
	apt-get install -y -qq $(POSTFIX_PACKAGES) >/dev/null 2>&1 || \
	  { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq $(POSTFIX_PACKAGES) >/dev/null 2>&1; } || \
	  echo "bench: Postfix could not be installed; the latency benchmark runs without its Postfix columns"

# Fault injection: the real relay and inbound functions in worker processes against moto and local smarthosts, every
# fault class with its own seed, a table per class (docs/DELIVERY.md, "Fault injection"); exit 1 on any loss, any
# duplicate outside the documented window, any DLQ entry without its reason. A few seconds of it run in `make test`.
chaos: venv
	$(BIN)/python -m chaos

# The hostile-mail suite at the size SES lets through (40 MB), with the real parser bounds and the inbound function's
# memory budget (tracemalloc); `make test` runs the same suite small. Minutes, not seconds.
hostile: venv
	RELAYDESK_HOSTILE_SCALE=full $(BIN)/python -m pytest --timeout 900 -v -s tests/unit/inbound/test_inbound_hostile.py

# SAM CLI gets its own virtualenv (requirements-build.txt says why). It builds without a container: for the arm64
# functions it installs each compiled dependency's manylinux aarch64 wheel (pydantic-core, cryptography, cffi and
# wrapt ship one; dkimpy is pure Python); a compiled package without one would stop the build here, naming it.
BUILD_VENV := .venv-build
$(BUILD_VENV)/.installed: requirements-build.txt
	$(PYTHON) -m venv $(BUILD_VENV)
	$(BUILD_VENV)/bin/pip install --quiet -r requirements-build.txt 2>&1 | grep -v "is ignored" || true
	$(BUILD_VENV)/bin/sam --version  # fail here, not later
	touch $@

build: $(BUILD_VENV)/.installed venv
	SAM_CLI_TELEMETRY=0 $(BUILD_VENV)/bin/sam build --template-file template.yaml
	@# The build is for arm64 (template.yaml): every compiled module must be an aarch64 ELF, and every handler must
	@# import with the built layer alone on the path (-S: no site-packages), as in Lambda: under qemu-aarch64 when
	@# this machine has it, else from an x86_64 build of the same layer (bench/build_check.py says which it did).
	$(BIN)/python -m bench.build_check .aws-sam/build

# An arm64 Python 3.11 from Debian's packages, run under qemu-user: `make build` imports the arm64 build with it,
# `make bench-arch` times imports on both architectures (docs/BENCHMARKS.md). Needs root (apt's multiarch index).
arm64-root: .arm64-root/usr/bin/python3.11
.arm64-root/usr/bin/python3.11:
	bench/arm64_root.sh .arm64-root

bench-arch: build
	$(BIN)/python -m bench.bench_arch .aws-sam/build

# checkov scans template.yaml in a virtualenv of its own (its
# pinned dependencies clash with the project's), every kept finding is skipped beside its resource with a reason.
CHECKOV_VENV := .venv-checkov
$(CHECKOV_VENV)/.installed: requirements-checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet -r requirements-checkov.txt 2>&1 | grep -v "is ignored" || true
	$(CHECKOV_VENV)/bin/checkov --version  # fail here, not later
	touch $@

checkov: $(CHECKOV_VENV)/.installed
	$(CHECKOV_VENV)/bin/checkov --quiet --compact --skip-download --framework cloudformation --file template.yaml

# Each deploy names its environment (samconfig.toml has no default one). Production shows the change set first.
deploy-sandbox: build
	SAM_CLI_TELEMETRY=0 $(BUILD_VENV)/bin/sam deploy --config-env sandbox
deploy-production: build
	SAM_CLI_TELEMETRY=0 $(BUILD_VENV)/bin/sam deploy --config-env production

clean:
	rm -rf $(VENV) $(BUILD_VENV) $(CHECKOV_VENV) .arm64-root .aws-sam .pytest_cache .ruff_cache
