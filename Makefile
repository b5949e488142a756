# The replication kit's commands. Every target installs what it needs first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
RUN := $(PY) -m replication
SET ?=

.PHONY: install test demo bench figures horse2zebra apple2orange summer2winter cityscapes monet2photo clean-venv

install: $(INSTALLED)

$(INSTALLED): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

test: install
	$(PY) -m pytest -q tests

clean-venv:
	rm -rf $(VENV)
