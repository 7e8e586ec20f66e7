# Two entry points for a fresh machine:  `make run` (the main job)  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DATA   ?= ../shared/data/fer2013.csv.gz
MODEL  ?= models/fer-default.skops
CNN    ?= models/cnn-compact-stem2-ens.pt
ACCURATE_CNNS  ?= models/cnn-large.pt+models/cnn-compact-ens.pt+models/cnn-compact-stem2-ens.pt
ACCURATE_MODEL ?= models/fer-accurate.skops

.PHONY: install run accurate test docs lock clean

$(BIN)/fer: requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $@

install: $(BIN)/fer

## The main job: the default pipeline of `fer predict` (the committed compact CNN, distilled on a GPU
## and run in int8: its embedding -> logistic regression, its probabilities temperature-scaled on
## PublicTest), trained on FER2013 Training, scored on PublicTest and PrivateTest. The most accurate
## pipeline is `make accurate`.
run: install
	$(BIN)/fer train --data $(DATA) --features cnn --clf logreg --pca 0 --cnn-checkpoint $(CNN) \
	  --feature-param cnn.precision=int8 --calibrate --out $(MODEL)

## The most accurate pipeline: three committed CNNs (large, two distilled compact ones) in int8, their
## probabilities averaged (nothing is trained; under a minute). The most accurate hand-crafted + CNN
## feature pipeline (hog+lbp+landmarks+cnn -> svm) is in BENCHMARKS.md.
accurate: install
	$(BIN)/fer train --data $(DATA) --clf cnn-ensemble --cnn-checkpoint $(ACCURATE_CNNS) --precision int8 \
	  --out $(ACCURATE_MODEL)

## The unit and end-to-end tests (CPU, a few minutes)
test: install
	$(BIN)/python -m pytest -q

## The documentation site (mkdocs-material + mkdocstrings) into site/; --strict: any warning fails
$(VENV)/.docs-installed: requirements-docs.lock $(BIN)/fer
	$(BIN)/python -m pip install -q -r requirements-docs.lock
	touch $@

docs: $(VENV)/.docs-installed
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

lock:
	$(BIN)/python -m pip freeze --exclude-editable | grep -vi '^fer-features' | grep -vxFf requirements-docs.lock | sed 's/^torch==\(.*\)+cpu/torch==\1/' > requirements.lock.new
	mv requirements.lock.new requirements.lock

clean:
	rm -rf $(VENV) build site *.egg-info
