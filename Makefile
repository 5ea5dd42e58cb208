# chantbot: `make demo` shows the whole flow offline; `make test` runs every test (the browser test needs
# Debian's chromium: `make browser` installs it; the sandbox's tests need bubblewrap: `make sandbox`);
# `make wheel` checks the installed package from a wheel; `make guide` refreshes the maintainer guide's example
# sections from a demo run (with the sandbox, as the guide shows it).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test guide wheel browser sandbox bench eval clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m bot demo

test: $(STAMP)
	$(PY) -m pytest -q -n 2

guide: $(STAMP)
	env -u ANTHROPIC_API_KEY CHANTBOT_SANDBOX=bwrap $(PY) -m bot demo --quiet --example-out docs/guides/oss-maintainer-workflow

wheel: $(STAMP)
	$(PY) -m pytest -q -m wheel

browser:
	command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

sandbox:
	command -v bwrap >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap; }

bench: $(STAMP)
	$(PY) bench/intake.py
	$(PY) bench/drain.py

eval: $(STAMP)
	$(PY) bench/triager.py
	$(PY) bench/duplicates.py

clean:
	rm -rf $(VENV) .pytest_cache build dist *.egg-info chantbot.db chantbot.db-wal chantbot.db-shm
