# The replication kit's commands. Every target installs what it needs first.
#   make demo          train on the embedded synthetic dataset (offline, CPU, minutes)
#   make test          the test suite
#   make bench         speed on this machine: step, input pipeline, demo loop (table + JSON)
#   make horse2zebra   (apple2orange, summer2winter, monet2photo, cityscapes) a paper run
# Extra settings for a run: make horse2zebra SET="train.epochs=50 data.batch_size=4"
# Extra train flags:       make demo FLAGS=--fresh   (or --until-step N, --run-dir DIR)
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
RUN := $(PY) -m replication
SET ?=
FLAGS ?=
OVERRIDES = $(foreach s,$(SET),--set $(s))
SYNTHETIC := data/synthetic

.PHONY: install test bench demo horse2zebra apple2orange summer2winter cityscapes monet2photo clean-venv

install: $(INSTALLED)

$(INSTALLED): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

test: install
	$(PY) -m pytest -q

# The step (sizes, precisions, XLA, batches), the input pipeline and the demo loop: a table and
# bench/results/<machine>.json. The reduced set for a CPU: $(PY) bench/step_speed.py --quick
bench: install
	$(PY) bench/step_speed.py

$(SYNTHETIC)/synthetic.json: | $(INSTALLED)
	$(RUN) data synthetic $(SYNTHETIC)

demo: install $(SYNTHETIC)/synthetic.json
	$(RUN) train demo $(OVERRIDES) $(FLAGS)

# A paper run: fetch its data (once), then train or resume it in runs/<name>/.
horse2zebra: install
	$(RUN) data download horse2zebra
	$(RUN) train horse2zebra $(OVERRIDES) $(FLAGS)

apple2orange: install
	$(RUN) data download apple2orange
	$(RUN) train apple2orange $(OVERRIDES) $(FLAGS)

summer2winter: install
	$(RUN) data download summer2winter_yosemite
	$(RUN) train summer2winter_yosemite $(OVERRIDES) $(FLAGS)

monet2photo: install
	$(RUN) data download monet2photo
	$(RUN) train monet2photo $(OVERRIDES) $(FLAGS)

cityscapes: install
	$(RUN) data download cityscapes
	$(RUN) train cityscapes $(OVERRIDES) $(FLAGS)

clean-venv:
	rm -rf $(VENV)
