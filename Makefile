# Two set-up commands: `make run` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP_RUN := $(VENV)/.installed-run
STAMP_DEV := $(VENV)/.installed-dev

.PHONY: run test lint bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP_RUN): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e .
	touch $@

$(STAMP_DEV): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@ $(STAMP_RUN)

.env:
	cp .env.mock .env

run: $(STAMP_RUN) .env
	$(PY) -m dma_bot

lint: $(STAMP_DEV)
	$(PY) -m ruff check src tests bench

test: $(STAMP_DEV)
	$(PY) -m ruff check src tests bench
	PYTHONASYNCIODEBUG=1 $(PY) -m pytest -W error $(PYTEST_ARGS)

bench: $(STAMP_RUN)
	$(PY) bench/hot_path.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
