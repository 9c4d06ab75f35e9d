# The two quick-start commands: `make demo` runs relay's main job on local defaults,
# `make test` runs the whole test suite. Each installs what it needs on Debian/Ubuntu.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Debian packages the tests drive for real: registries, the skopeo oracle, buildah for ACR builds.
APT_PACKAGES := python3-venv docker-registry skopeo buildah apache2-utils git make
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test test-fast lint system-deps clean requirements

# relay's main job end to end on this machine: a pull request adds images, then lock, generate,
# ACR builds (buildah), Harbor replication and a pull, against the emulators in relay/sandbox.
demo: system-deps $(BIN)/.installed
	$(BIN)/relay validate
	$(BIN)/relay generate --check
	$(BIN)/relay sandbox demo

test: system-deps lint
	$(BIN)/python -m pytest

# Everything but real buildah builds and the slowest flows: for the edit-test loop, not for CI.
test-fast: system-deps lint
	$(BIN)/python -m pytest -m "not buildah and not slow"

lint: $(BIN)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/zizmor --offline --no-progress --quiet .github/
	$(BIN)/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
	$(BIN)/check-jsonschema --builtin-schema vendor.dependabot .github/dependabot.yml

system-deps:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV) || { $(MAKE) system-deps && $(PYTHON) -m venv $(VENV); }

$(BIN)/.installed: pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[sandbox]'
	$(BIN)/python -m compileall -q relay  # an editable install compiles nothing; start-up counts
	touch $@

$(BIN)/.installed-test: pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	$(BIN)/python -m compileall -q relay
	touch $@ $(BIN)/.installed

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis

# The hash-locked files the GitHub workflows install (requirements/*.txt; ci.yml's test.txt adds
# the test extra), refreshed from pyproject.toml and requirements/*.in with pip-tools (in the
# test extra).
PIP_COMPILE = $(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
	--no-emit-index-url --no-emit-trusted-host --no-emit-find-links --upgrade
requirements: $(BIN)/.installed-test
	$(PIP_COMPILE) --output-file requirements/build.txt requirements/build.in
	$(PIP_COMPILE) --output-file requirements/workflows.txt pyproject.toml requirements/workflows.in
	$(PIP_COMPILE) --extra test --output-file requirements/test.txt pyproject.toml requirements/test.in
