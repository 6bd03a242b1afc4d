# Two entry points on a fresh machine: `make train` and `make test`.
# Contributors: `make docs` (the site, into site/), `make lint`, `make typecheck`, `make wheel`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
CKSUM  := $(shell cat pyproject.toml | cksum | cut -d' ' -f1)
STAMP  := $(VENV)/.installed-$(CKSUM)
TOOLS  := $(VENV)/.tools-$(CKSUM)
# pytest workers: XLA compiles are single-threaded, so one worker per core pays.
WORKERS ?= 2
# The slow step's SIGKILL test mostly waits on the children it kills: a third worker keeps both cores busy.
SLOW_WORKERS ?= 3

.PHONY: install tools train test test-fast test-slow test-bench bench docs lint typecheck format wheel clean

# Bytecode: pip compiles every installed module on one core (~35 s of torch, scipy and matplotlib alone);
# compileall does it on every core. The .pyc files must exist: with PYTHONDONTWRITEBYTECODE set, as on
# the CI machines, a process would otherwise recompile every module it imports, every time it starts.
# (compileall's status is ignored: some packages ship files that are not meant to compile.)
SITE   = $(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'
COMPILE = $(PY) -m compileall -q -j 0 "$$($(SITE))" >/dev/null 2>&1 || true
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q --no-compile -e '.[train,test]'
	$(COMPILE)
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

# The contributor tools with everything else, in one pip run (CI's install step): mkdocs + mkdocstrings
# (docs extra), ruff, mypy and build (dev extra). It also stands for `make install`.
$(TOOLS): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q --no-compile -e '.[train,test,docs,dev]'
	$(COMPILE)
	rm -f $(VENV)/.installed-* $(VENV)/.tools-*
	touch $(STAMP) $(TOOLS)

install: $(STAMP)

tools: $(TOOLS)

train: $(STAMP)
	$(VENV)/bin/jcnn train --out runs/digits --overwrite

# The suite shares one XLA compilation cache (tests/conftest.py); it starts empty, as on a fresh clone.
test: $(STAMP)
	rm -rf .jax_cache
	$(PY) -m compileall -q -j 0 jcnn >/dev/null 2>&1 || true  # for the CLI tests' many child processes
	$(PY) -m pytest -n $(WORKERS) -m "not slow" -q
	$(PY) -m pytest -n $(SLOW_WORKERS) -m "slow and not bench" -q || [ $$? -eq 5 ]

# The benchmark harness's checks (its twins compute the same step as jcnn in float64): run before
# benchmarking or when benchmarks/ changes.
test-bench: $(STAMP)
	$(PY) -m pytest -n $(WORKERS) -m bench -q

test-fast: $(STAMP)
	$(PY) -m pytest -n $(WORKERS) -m "not slow" -q -x

bench: $(STAMP)
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) -m benchmarks.compare

# The documentation site and API reference, warnings as errors (mkdocs.yml has strict: true).
docs: $(TOOLS)
	$(VENV)/bin/mkdocs build --strict --site-dir site

# ruff: lint and import order (pyproject's [tool.ruff]), then the formatting check; enforced in CI.
# `make format` applies both.
lint: $(TOOLS)
	@rc=0; $(VENV)/bin/ruff check --output-format concise . || rc=1; \
		$(VENV)/bin/ruff format --check . || rc=1; exit $$rc

# mypy, strict on jcnn/ (pyproject's [tool.mypy]); enforced in CI.
typecheck: $(TOOLS)
	$(VENV)/bin/mypy

# Apply ruff's fixes and formatting to the tree (rewrites files: commit before, review after).
format: $(TOOLS)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Build the sdist and the wheel, install the wheel into a fresh venv and smoke-test it.
wheel: $(TOOLS)
	BUILD_PYTHON=$(PY) .ci/wheel_smoke.sh

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis runs .jax_cache site build dist
