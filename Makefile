# Two entry points for a fresh machine:  `make run` (the main job)  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DATA   ?= ../shared/data/fer2013.csv.gz
MODEL  ?= models/fer-default.skops
CNN    ?= models/cnn-medium-c4.pt

.PHONY: install run test docs lock clean

$(BIN)/fer: requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $@

install: $(BIN)/fer

## The main job: the default pipeline of `fer predict` (HOG+LBP+landmarks+CNN embedding -> SVM, the
## committed medium CNN checkpoint, fourth cycle, its embedding averaged over each face and its mirror),
## trained on FER2013 Training, scored on PublicTest and PrivateTest
run: install
	$(BIN)/fer train --data $(DATA) --features hog+lbp+landmarks+cnn --clf svm --cnn-checkpoint $(CNN) \
	  --feature-param cnn.tta=flip --out $(MODEL)

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
