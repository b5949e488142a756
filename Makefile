# The replication kit's commands. Every target installs what it needs first.
#   make demo          train on the embedded synthetic dataset (offline, CPU, minutes), score it, draw its figures
#   make figures       loss curves, progression, test results and a results page for every run in runs/
#   make evaluate RUN=runs/NAME   a run's numbers beside the paper's (RUN/eval/metrics.md)
#   make cityscapes-scorer        train the kit's Cityscapes scorer for labels->photo (GPU work)
#   make test          the test suite
#   make bench         speed on this machine: step, input pipeline, demo loop, conv gradients, step profile (tables + JSON)
#   make horse2zebra   (apple2orange, summer2winter, monet2photo, cityscapes) a paper run
#   make pix2pix-facades (pix2pix-cityscapes, pix2pix-maps) pix2pix, the paired baseline
#   make compare-synthetic   CycleGAN (demo) and pix2pix on the synthetic data, side by side (offline)
#   make cityscapes-ablations   the loss ablations of the paper's Tables 4 and 5, one after another
# Extra settings for a run: make horse2zebra SET="train.epochs=50 data.batch_size=4"
# Extra train flags:       make demo FLAGS=--fresh   (or --until-step N, --run-dir DIR)
# Some runs' figures:      make figures RUNS="runs/a runs/b"
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
KIT := $(PY) -m replication
RUN ?= runs/demo
SET ?=
FLAGS ?=
RUNS ?= $(wildcard runs/*/)
OVERRIDES = $(foreach s,$(SET),--set $(s))
SYNTHETIC := data/synthetic

.PHONY: install test bench demo figures evaluate cityscapes-scorer horse2zebra apple2orange summer2winter cityscapes monet2photo clean-venv \
	pix2pix-facades pix2pix-cityscapes pix2pix-maps pix2pix-synthetic compare-synthetic \
	cityscapes-ablations patchgan-sizes identity-on-off resnet-vs-unet transpose-vs-resize-conv

install: $(INSTALLED)

$(INSTALLED): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

# One test process per core, at most 4 (each holds its own TensorFlow).
test: install
	$(PY) -m pytest -q -n auto --maxprocesses=4 --dist loadgroup

# The step (sizes, precisions, XLA, conv gradients, batches), the input pipeline and the demo loop:
# a table and bench/results/<machine>.json. The reduced set for a CPU: $(PY) bench/step_speed.py --quick
# Then each conv's backward pass, TF's kernels against forward convs: bench/results/conv-gradients-<machine>.json
# Then where the demo's step spends its time, by op type (TF's profiler): bench/results/step-profile-demo-<machine>.json
bench: install
	$(PY) bench/step_speed.py
	$(PY) bench/conv_gradients.py
	$(PY) bench/step_profile.py

# Rewritten when the generator changes (a dataset from an older kit is refused by the training).
$(SYNTHETIC)/synthetic.json: replication/data/synthetic.py | $(INSTALLED)
	$(KIT) data synthetic $(SYNTHETIC)

demo: install $(SYNTHETIC)/synthetic.json
	$(KIT) train demo $(OVERRIDES) $(FLAGS)
	$(KIT) evaluate runs/demo --metrics truth
	$(KIT) figures runs/demo

# figures/<run>/: losses, progression, test results, index.html; figures/index.html lists every run.
figures: install
	$(KIT) figures $(RUNS)

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

# pix2pix (Isola et al.), the paired baseline: Tables 2 and 3 get their pix2pix rows from the two
# cityscapes runs (labels -> photo, photo -> labels).
pix2pix-facades: install
	$(KIT) data download pix2pix_facades
	$(KIT) train pix2pix_facades $(OVERRIDES) $(FLAGS)

pix2pix-cityscapes: install
	$(KIT) data download pix2pix_cityscapes
	$(KIT) train pix2pix_cityscapes $(OVERRIDES) $(FLAGS)
	$(KIT) train pix2pix_cityscapes_photo2labels $(OVERRIDES) $(FLAGS)

pix2pix-maps: install
	$(KIT) data download pix2pix_maps
	$(KIT) train pix2pix_maps $(OVERRIDES) $(FLAGS)

pix2pix-synthetic: install $(SYNTHETIC)/synthetic.json
	$(KIT) train pix2pix_synthetic $(OVERRIDES) $(FLAGS)

# Seed 003's question offline: CycleGAN (unpaired) and pix2pix (ground-truth pairs) on the same
# synthetic scenes, then the same test images translated by both, side by side.
compare-synthetic: demo pix2pix-synthetic
	$(KIT) figures --compare runs/demo runs/pix2pix_synthetic --labels CycleGAN pix2pix

# Ablations and variants: each experiment is a small change of another (see README).
ABLATIONS := cityscapes_ablation_cycle_alone cityscapes_ablation_gan_alone \
	cityscapes_ablation_gan_forward cityscapes_ablation_gan_backward cityscapes_ablation_full

cityscapes-ablations: install
	$(KIT) data download cityscapes
	set -e; for e in $(ABLATIONS); do $(KIT) train $$e $(OVERRIDES) $(FLAGS); done

patchgan-sizes: install
	$(KIT) data download pix2pix_cityscapes
	set -e; for e in pix2pix_cityscapes_patch1 pix2pix_cityscapes_patch16 pix2pix_cityscapes pix2pix_cityscapes_patch286; do \
		$(KIT) train $$e $(OVERRIDES) $(FLAGS); done

identity-on-off: install
	$(KIT) data download monet2photo
	$(KIT) train monet2photo $(OVERRIDES) $(FLAGS)
	$(KIT) train monet2photo_no_identity $(OVERRIDES) $(FLAGS)

resnet-vs-unet: install
	$(KIT) data download monet2photo
	$(KIT) train monet2photo $(OVERRIDES) $(FLAGS)
	$(KIT) train monet2photo_unet $(OVERRIDES) $(FLAGS)

transpose-vs-resize-conv: install
	$(KIT) data download horse2zebra
	$(KIT) train horse2zebra $(OVERRIDES) $(FLAGS)
	$(KIT) train horse2zebra_resize_conv $(OVERRIDES) $(FLAGS)

clean-venv:
	rm -rf $(VENV)
