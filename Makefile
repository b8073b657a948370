# make demo   install into .venv and run the examples end to end
# make test   install into .venv and run the whole test suite
# make bench  run the SDK benchmark (ratios measured side by side)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test bench install clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,examples]'
	touch $@

install: $(VENV)/.installed

demo: install
	$(PY) examples/phishing_monitor.py

test: install
	$(PY) -m ruff check .
	$(PY) -m pytest -q

bench: install
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) build *.egg-info
