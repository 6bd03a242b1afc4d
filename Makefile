# Two entry points on a fresh machine: `make train` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
# pytest workers: XLA compiles are single-threaded, so one worker per core pays.
WORKERS ?= 2

.PHONY: install train test test-fast test-slow bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[train,test]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

train: $(STAMP)
	$(VENV)/bin/jcnn train --out runs/digits --overwrite

# The suite shares one XLA compilation cache (tests/conftest.py); it starts empty, as on a fresh clone.
test: $(STAMP)
	rm -rf .jax_cache
	$(PY) -m pytest -n $(WORKERS) -m "not slow" -q
	$(PY) -m pytest -n $(WORKERS) -m slow -q || [ $$? -eq 5 ]

test-fast: $(STAMP)
	$(PY) -m pytest -n $(WORKERS) -m "not slow" -q -x

bench: $(STAMP)
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) -m benchmarks.compare

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis runs .jax_cache
