# The replication kit's commands: `make` (or `make help`) lists them, from the `## ` comments below.
# Every target installs what it needs first.
#
## Extra settings for a run:  make horse2zebra SET="train.epochs=50 data.batch_size=4"
## Extra train flags:         make demo FLAGS=--fresh   (or --until-step N, --run-dir DIR)
## Runs go to RUNS_DIR/NAME:  make compare-synthetic RUNS_DIR=runs/try2   (default runs)
## Some runs' figures:        make figures RUNS="runs/a runs/b"
## One run's numbers:         make evaluate RUN=runs/NAME
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
KIT := $(VENV)/bin/replication
RUNS_DIR ?= runs
RUN ?= $(RUNS_DIR)/demo
SET ?=
FLAGS ?=
RUNS ?= $(wildcard $(RUNS_DIR)/*/)
OVERRIDES = $(foreach s,$(SET),--set $(s))
SYNTHETIC := data/synthetic

# Train experiment $(1) into RUNS_DIR/$(1) (a --run-dir in FLAGS comes later and wins).
train = $(KIT) train $(1) --run-dir $(RUNS_DIR)/$(1) $(OVERRIDES) $(FLAGS)
# The folder a training of $(1) writes: FLAGS' --run-dir DIR (or --run-dir=DIR) if given, else RUNS_DIR/$(1).
FLAGS_RUN_DIR := $(shell previous=; for flag in $(FLAGS); do case "$$previous" in (--run-dir) echo "$$flag";; esac; \
	case "$$flag" in (--run-dir=*) echo "$$flag" | cut -d= -f2-;; esac; previous="$$flag"; done | tail -n 1)
run_dir = $(or $(FLAGS_RUN_DIR),$(RUNS_DIR)/$(1))

ifneq ($(and $(FLAGS_RUN_DIR),$(filter compare-synthetic,$(MAKECMDGOALS))),)
$(error compare-synthetic trains two runs, so one --run-dir cannot hold them: give RUNS_DIR=DIR instead)
endif

.DEFAULT_GOAL := help
.PHONY: help install test bench demo figures evaluate cityscapes-scorer horse2zebra apple2orange summer2winter cityscapes monet2photo clean-venv \
	pix2pix-facades pix2pix-cityscapes pix2pix-maps pix2pix-synthetic compare-synthetic \
	cityscapes-ablations patchgan-sizes identity-on-off resnet-vs-unet transpose-vs-resize-conv

help: ## this list
	@echo "make TARGET, one of:"
	@awk -F ':.*## ' '/^[a-z0-9-]+:.*## / { printf "  %-26s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)
	@echo
	@sed -n 's/^## //p' $(MAKEFILE_LIST)

install: $(INSTALLED) ## the kit into .venv: the pinned requirements, then the `replication` command (editable)

$(INSTALLED): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --quiet --no-deps -e .  # -qq: without setuptools' notice on editable installs
	touch $@

# One test process per core, at most 4 (each holds its own TensorFlow).
test: install ## the test suite
	$(PY) -m pytest -q -n auto --maxprocesses=4 --dist loadgroup

# The step (sizes, precisions, XLA, conv gradients, batches), the input pipeline and the demo loop:
# a table and bench/results/<machine>.json. The reduced set for a CPU: $(PY) bench/step_speed.py --quick
# Then each conv's backward pass, TF's kernels against forward convs: bench/results/conv-gradients-<machine>.json
# Then where the demo's step spends its time, by op type (TF's profiler): bench/results/step-profile-demo-<machine>.json
bench: install ## speed here: the step (sizes, precisions, XLA), input pipeline, demo loop, conv gradients, step profile
	$(PY) bench/step_speed.py
	$(PY) bench/conv_gradients.py
	$(PY) bench/step_profile.py

# Rewritten when the generator changes (a dataset from an older kit is refused by the training).
$(SYNTHETIC)/synthetic.json: replication/data/synthetic.py | $(INSTALLED)
	$(KIT) data synthetic $(SYNTHETIC)

demo: install $(SYNTHETIC)/synthetic.json ## train on the embedded synthetic dataset (offline, CPU, minutes), score it, draw its figures
	$(call train,demo)
	$(KIT) evaluate '$(call run_dir,demo)' --metrics truth
	$(KIT) figures '$(call run_dir,demo)'

# figures/<run>/: losses, progression, test results, index.html; figures/index.html lists every run.
figures: install ## loss curves, progression, test results and a results page for every run in RUNS_DIR (or RUNS)
	$(KIT) figures $(RUNS)

evaluate: install ## a run's numbers beside the paper's: RUN/eval/metrics.json and metrics.md (RUN=runs/NAME)
	$(KIT) evaluate $(RUN)

cityscapes-scorer: install ## train the kit's Cityscapes scorer for labels->photo (GPU work)
	$(KIT) data download cityscapes
	$(KIT) cityscapes-scorer cityscapes

# A paper run: fetch its data (once), then train or resume it in RUNS_DIR/<name>/.
horse2zebra: install ## a paper run: horse <-> zebra, 256x256 (fetches the data once)
	$(KIT) data download horse2zebra
	$(call train,horse2zebra)

apple2orange: install ## a paper run: apple <-> orange, 256x256
	$(KIT) data download apple2orange
	$(call train,apple2orange)

summer2winter: install ## a paper run: summer <-> winter Yosemite, 256x256
	$(KIT) data download summer2winter_yosemite
	$(call train,summer2winter_yosemite)

monet2photo: install ## a paper run: Monet <-> photo, 256x256, identity loss on
	$(KIT) data download monet2photo
	$(call train,monet2photo)

cityscapes: install ## a paper run: Cityscapes labels <-> photos, 128x128
	$(KIT) data download cityscapes
	$(call train,cityscapes)

# pix2pix (Isola et al.), the paired baseline: Tables 2 and 3 get their pix2pix rows from the two
# cityscapes runs (labels -> photo, photo -> labels).
pix2pix-facades: install ## pix2pix, the paired baseline: facades, labels -> photos
	$(KIT) data download pix2pix_facades
	$(call train,pix2pix_facades)

pix2pix-cityscapes: install ## pix2pix on Cityscapes, both ways: the pix2pix rows of Tables 2 and 3
	$(KIT) data download pix2pix_cityscapes
	$(call train,pix2pix_cityscapes)
	$(call train,pix2pix_cityscapes_photo2labels)

pix2pix-maps: install ## pix2pix on maps: aerial photo -> map
	$(KIT) data download pix2pix_maps
	$(call train,pix2pix_maps)

pix2pix-synthetic: install $(SYNTHETIC)/synthetic.json ## pix2pix on the synthetic dataset's true pairs (offline, CPU)
	$(call train,pix2pix_synthetic)

# Seed 003's question offline: CycleGAN (unpaired) and pix2pix (ground-truth pairs) on the same
# synthetic scenes, then the same test images translated by both, side by side.
compare-synthetic: demo pix2pix-synthetic ## CycleGAN (demo) and pix2pix on the synthetic data, side by side (offline)
	$(KIT) figures --compare $(RUNS_DIR)/demo $(RUNS_DIR)/pix2pix_synthetic --labels CycleGAN pix2pix

# Ablations and variants: each experiment is a small change of another (replication experiments lists them).
ABLATIONS := cityscapes_ablation_cycle_alone cityscapes_ablation_gan_alone \
	cityscapes_ablation_gan_forward cityscapes_ablation_gan_backward cityscapes_ablation_full

cityscapes-ablations: install ## the loss ablations of the paper's Tables 4 and 5, one after another
	$(KIT) data download cityscapes
	set -e; for e in $(ABLATIONS); do $(call train,$$e); done

patchgan-sizes: install ## pix2pix's discriminator study: 1x1, 16x16, 70x70 and 286x286 PatchGANs on Cityscapes
	$(KIT) data download pix2pix_cityscapes
	set -e; for e in pix2pix_cityscapes_patch1 pix2pix_cityscapes_patch16 pix2pix_cityscapes pix2pix_cityscapes_patch286; do \
		$(call train,$$e); done

identity-on-off: install ## Monet <-> photo with and without the identity loss (paper Figure 9)
	$(KIT) data download monet2photo
	$(call train,monet2photo)
	$(call train,monet2photo_no_identity)

resnet-vs-unet: install ## Monet <-> photo: ResNet-9 against U-Net-256 generators
	$(KIT) data download monet2photo
	$(call train,monet2photo)
	$(call train,monet2photo_unet)

transpose-vs-resize-conv: install ## horse <-> zebra: transposed convolutions against resize-conv up-sampling
	$(KIT) data download horse2zebra
	$(call train,horse2zebra)
	$(call train,horse2zebra_resize_conv)

clean-venv: ## remove .venv (make install makes it again)
	rm -rf $(VENV)
