# `make run` starts AQE (web + worker + embedded Redis when REDIS_URL is unset); `make test` runs every test.
# Both create .venv and install what they need on first use (Python 3.11+, pip, git and make are enough).
PYTHON ?= python3
VENV ?= .venv
STAMP := $(VENV)/.installed

.PHONY: run test install bench clean

run: $(STAMP)
	$(VENV)/bin/aqe run

test: $(STAMP)
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

bench: $(STAMP)
	$(VENV)/bin/python bench/webhook_ingest.py

clean:
	rm -rf $(VENV) .aqe-data
