# The replication kit's commands. Every target installs what it needs first.
#   make demo          train on the embedded synthetic dataset (offline, CPU, minutes), then score it
#   make evaluate RUN=runs/NAME   a run's numbers beside the paper's (RUN/eval/metrics.md)
#   make cityscapes-scorer        train the kit's Cityscapes scorer for labels->photo (GPU work)
#   make test          the test suite
#   make bench         speed of the training step (table + JSON)
#   make horse2zebra   (apple2orange, summer2winter, monet2photo, cityscapes) a paper run
# Extra settings for a run: make horse2zebra SET="train.epochs=50 data.batch_size=4"
# Extra train flags:       make demo FLAGS=--fresh   (or --until-step N, --run-dir DIR)
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
KIT := $(PY) -m replication
RUN ?= runs/demo
SET ?=
FLAGS ?=
OVERRIDES = $(foreach s,$(SET),--set $(s))
SYNTHETIC := data/synthetic

.PHONY: install test bench demo evaluate cityscapes-scorer horse2zebra apple2orange summer2winter cityscapes monet2photo clean-venv

install: $(INSTALLED)

$(INSTALLED): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

test: install
	$(PY) -m pytest -q

# Steps per second of the compiled CycleGAN step, plain and XLA; a table and bench/results/*.json.
bench: install
	$(PY) bench/step_speed.py

$(SYNTHETIC)/synthetic.json: | $(INSTALLED)
	$(KIT) data synthetic $(SYNTHETIC)

demo: install $(SYNTHETIC)/synthetic.json
	$(KIT) train demo $(OVERRIDES) $(FLAGS)
	$(KIT) evaluate runs/demo --metrics truth

# Every metric the run's data allows, beside the paper's numbers: RUN/eval/metrics.json and metrics.md.
evaluate: install
	$(KIT) evaluate $(RUN)

# The labels->photo scorer (a small segmentation network), trained on the Cityscapes training photos.
cityscapes-scorer: install
	$(KIT) data download cityscapes
	$(KIT) cityscapes-scorer cityscapes

# A paper run: fetch its data (once), then train or resume it in runs/<name>/.
horse2zebra: install
	$(KIT) data download horse2zebra
	$(KIT) train horse2zebra $(OVERRIDES) $(FLAGS)

apple2orange: install
	$(KIT) data download apple2orange
	$(KIT) train apple2orange $(OVERRIDES) $(FLAGS)

summer2winter: install
	$(KIT) data download summer2winter_yosemite
	$(KIT) train summer2winter_yosemite $(OVERRIDES) $(FLAGS)

monet2photo: install
	$(KIT) data download monet2photo
	$(KIT) train monet2photo $(OVERRIDES) $(FLAGS)

cityscapes: install
	$(KIT) data download cityscapes
	$(KIT) train cityscapes $(OVERRIDES) $(FLAGS)

clean-venv:
	rm -rf $(VENV)
