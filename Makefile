# make demo   install into .venv and run the demo: analyzer, a phishing classifier, drift, evasion, a swapped model
# make test   install into .venv and run the whole test suite
# make bench  run the SDK benchmark (ratios measured side by side)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test bench install browser clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,examples]'
	touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/otelml demo

test: install browser
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pytest -q

# The status-page test loads the page in Debian's chromium. Installed where we may (root with apt-get, as in CI);
# elsewhere that one test is skipped with the reason.
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
		echo "chromium not installed: the status-page test will be skipped"

bench: install
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) build *.egg-info
