# Two set-up commands: `make run` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP_RUN := $(VENV)/.installed-run
STAMP_DEV := $(VENV)/.installed-dev
# The hot cores compiled in place by mypyc (setup.py); rebuilt when one of their sources changes. Without a
# compiler the build says so once, records it in the manifest and the pure-Python cores run (dma_bot._native
# decides at import) until a compiled source changes.
NATIVE := src/dma_bot/_native.json
NATIVE_SOURCES := setup.py src/dma_bot/_native.py $(shell $(PYTHON) src/dma_bot/_native.py)

.PHONY: run test lint bench native clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP_RUN): pyproject.toml | $(PY)
	DMA_BOT_COMPILE=0 $(PY) -m pip install --quiet -e '.[native]'
	touch $@

$(STAMP_DEV): pyproject.toml | $(PY)
	DMA_BOT_COMPILE=0 $(PY) -m pip install --quiet -e '.[dev]'
	touch $@ $(STAMP_RUN)

$(NATIVE): $(NATIVE_SOURCES) | $(STAMP_RUN)
	$(PY) setup.py --quiet build_ext --inplace

.env:
	cp .env.mock .env

run: $(STAMP_RUN) $(NATIVE) .env
	$(PY) -m dma_bot

lint: $(STAMP_DEV)
	$(PY) -m ruff check src tests bench setup.py

test: $(STAMP_DEV) $(NATIVE)
	$(PY) -m ruff check src tests bench setup.py
	PYTHONASYNCIODEBUG=1 $(PY) -m pytest -W error $(PYTEST_ARGS)

bench: $(STAMP_RUN) $(NATIVE)
	$(PY) bench/hot_path.py

native: $(NATIVE)

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info $(NATIVE)
	find src -name '*.so' -delete
