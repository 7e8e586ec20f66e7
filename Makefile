# Two entry points for a fresh machine:  `make run` (the main job)  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DATA   ?= ../shared/data/fer2013.csv.gz
MODEL  ?= models/fer-default.skops
CNN    ?= models/cnn-compact-stem2-photometric-views.pt
ACCURATE_CNNS  ?= models/cnn-large.pt+models/cnn-compact-ens.pt+models/cnn-compact-stem2-ens.pt+models/cnn-compact-stem2-photometric.pt+models/cnn-compact-stem2-photometric-views.pt
ACCURATE_MODEL ?= models/fer-accurate.skops

.PHONY: install run accurate bundle lint test docs dist check-wheel lock clean

$(BIN)/fer: requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $@

install: $(BIN)/fer

## The main job: the default pipeline of `fer predict` (the committed compact CNN, distilled on a GPU
## and run in int8: its embedding -> logistic regression, its probabilities temperature-scaled on
## PublicTest), trained on FER2013 Training, scored on PublicTest and PrivateTest, then compared with
## the model the package ships as `default` (models/ outputs are not tracked: git status stays clean).
## The most accurate pipeline is `make accurate`.
run: install
	$(BIN)/fer train --data $(DATA) --features cnn --clf logreg --pca 0 --cnn-checkpoint $(CNN) \
	  --feature-param cnn.precision=int8 --calibrate --out $(MODEL)
	$(BIN)/fer models compare $(MODEL) default

## The most accurate pipeline: five committed CNNs (large, two distilled compact ones, two fine-tunes of one of them for the shifts of real photos) in int8, their
## probabilities averaged (nothing is trained; ~30 s on an AMX Xeon, ~4 min on an AVX2-only CPU). The most accurate hand-crafted + CNN
## feature pipeline (hog+lbp+landmarks+cnn -> svm) is in BENCHMARKS.md.
accurate: install
	$(BIN)/fer train --data $(DATA) --clf cnn-ensemble --cnn-checkpoint $(ACCURATE_CNNS) --precision int8 \
	  --out $(ACCURATE_MODEL)
	$(BIN)/fer models compare $(ACCURATE_MODEL) accurate

## Maintainers: make the models of `make run` and `make accurate` the ones the package ships (then commit them)
BUNDLED := fer_features/models
bundle:
	test -f $(MODEL) && test -f $(ACCURATE_MODEL)
	cp $(MODEL) $(BUNDLED)/default.skops && cp $(basename $(MODEL)).json $(BUNDLED)/default.json
	cp $(ACCURATE_MODEL) $(BUNDLED)/accurate.skops && cp $(basename $(ACCURATE_MODEL)).json $(BUNDLED)/accurate.json

## ruff check (pyproject's [tool.ruff]; ruff is in requirements.lock)
lint: install
	$(BIN)/ruff check .

## The unit and end-to-end tests (CPU, a few minutes)
test: install
	$(BIN)/python -m pytest -q

## The documentation site (mkdocs-material + mkdocstrings) into site/; --strict: any warning fails
$(VENV)/.docs-installed: requirements-docs.lock $(BIN)/fer
	$(BIN)/python -m pip install -q -r requirements-docs.lock
	touch $@

docs: $(VENV)/.docs-installed
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

## A release: sdist and wheel in dist/, checked by twine
dist: install
	rm -rf dist
	$(BIN)/python -m build --outdir dist . >/dev/null
	$(BIN)/python -m twine check --strict dist/*

## The wheel as a user gets it: installed with its declared dependencies (the lock as constraints, so
## torch is the CPU build) into a fresh venv, then `fer predict` and `Recognizer()` run from a folder
## outside the repository on skimage's astronaut, which must come out happy.
WHEEL_VENV ?= /tmp/fer-wheel-venv
check-wheel: dist
	rm -rf $(WHEEL_VENV) && $(PYTHON) -m venv $(WHEEL_VENV)
	$(WHEEL_VENV)/bin/python -m pip install -q --upgrade pip
	$(WHEEL_VENV)/bin/python -m pip install -q -c requirements.lock dist/*.whl
	$(BIN)/python -c "import skimage.data, PIL.Image; PIL.Image.fromarray(skimage.data.astronaut()).save('$(WHEEL_VENV)/astronaut.png')"
	cd $(WHEEL_VENV) && PYTHONNOUSERSITE=1 ./bin/python $(CURDIR)/.ci/check_wheel.py astronaut.png

lock:
	$(BIN)/python -m pip freeze --exclude-editable | grep -vi '^fer-features' | grep -vxFf requirements-docs.lock | sed 's/^torch==\(.*\)+cpu/torch==\1/' > requirements.lock.new
	mv requirements.lock.new requirements.lock

clean:
	rm -rf $(VENV) build dist site *.egg-info
