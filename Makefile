# Two entry points for a fresh machine:  `make run` (the main job)  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DATA   ?= ../shared/data/fer2013.csv.gz
MODEL  ?= models/fer-default.joblib

.PHONY: install run test lock clean

$(BIN)/fer: requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $@

install: $(BIN)/fer

## The main job: train the default hand-crafted pipeline (HOG+LBP+landmarks -> SVM) on FER2013
run: install
	$(BIN)/fer train --data $(DATA) --out $(MODEL)

## The unit and end-to-end tests (CPU, a few minutes)
test: install
	$(BIN)/python -m pytest -q

lock:
	$(BIN)/python -m pip freeze --exclude-editable | grep -vi '^fer-features' | sed 's/^torch==\(.*\)+cpu/torch==\1/' > requirements.lock.new
	mv requirements.lock.new requirements.lock

clean:
	rm -rf $(VENV) build *.egg-info
