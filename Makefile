# Two commands for a fresh machine: `make demo` and `make test`.
# Both create .venv on first use and reuse it while setup.py and
# constraints.txt are unchanged (the stamp files below record that).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP_INSTALL := $(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt
DEMO_DATA ?= sample-data
DEMO_OUT ?= demo-output
PYTEST_ARGS ?=

.PHONY: demo test lint install clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed-runtime: setup.py constraints.txt | $(PY)
	$(PIP_INSTALL) -e .
	touch $@

$(VENV)/.installed-test: setup.py constraints.txt | $(PY)
	$(PIP_INSTALL) -e ".[test]"
	touch $@ $(VENV)/.installed-runtime

install: $(VENV)/.installed-runtime

demo: $(VENV)/.installed-runtime
	$(VENV)/bin/tubelets demo --data $(DEMO_DATA) --output $(DEMO_OUT)

test: $(VENV)/.installed-test
	# One torch thread per test worker: two workers on two cores, no oversubscription.
	OMP_NUM_THREADS=1 $(PY) -m pytest -n 2 $(PYTEST_ARGS)

lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) $(DEMO_DATA) $(DEMO_OUT) .pytest_cache
