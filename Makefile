# make demo   install into .venv and run the demo: analyzer, a phishing classifier, drift, evasion, a swapped model
# make test   install into .venv and run the whole test suite
# make bench  run the SDK benchmark (ratios measured side by side)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test bench install browser binaries clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,examples]'
	touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/otelml demo

test: install browser binaries
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pytest -q

# The status-page test loads the page in Debian's chromium. Installed where we may (root with apt-get, as in CI);
# elsewhere that one test is skipped with the reason.
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
		echo "chromium not installed: the status-page test will be skipped"

# The production-path tests (tests/test_collector.py, tests/test_scaleout.py) run the collector built from
# collector/builder-config.yaml and Jaeger v2, both with Go through the Go module proxy, and Debian's prometheus:
# collector/build.sh builds or installs each once (cached under ~/.cache/otelml). Where Go or root is missing, those
# tests are skipped with the reason; with CI=true they fail instead. build.sh reports its progress on stderr (a line
# when a build starts, one every 5 minutes while it runs, one when it is done); its stdout, the binaries' paths, is
# not needed here.
binaries:
	@echo "binaries: the collector, Jaeger and prometheus for the production-path tests (collector/build.sh;" \
		"the first time, Go compiles for 20-40 minutes; cached under $${OTELML_CACHE:-~/.cache/otelml})"
	@collector/build.sh all >/dev/null || { status=$$?; [ $$status = 2 ] || exit $$status; \
		echo "some binaries cannot be had here: the tests that need them will be skipped"; }

bench: install
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) build *.egg-info
