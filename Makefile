# Two entry points for a fresh machine:  `make run` (the main job)  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DATA   ?= ../shared/data/fer2013.csv.gz
MODEL  ?= models/fer-default.skops
CNN    ?= models/cnn-compact-stem2-ferplus-wise.pt
PRIOR  ?= 0.5
ACCURATE_CNNS  ?= models/cnn-large.pt+models/cnn-compact-ens-soup.pt+models/cnn-compact-stem2-ferplus-soup.pt
ACCURATE_PRIOR ?= 0.25
ACCURATE_MODEL ?= models/fer-accurate.skops

.PHONY: install run accurate bundle lint test docs dist check-wheel lock clean

$(BIN)/fer: requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $@

install: $(BIN)/fer

## The main job: the default pipeline of `fer predict` (a compact CNN distilled on a GPU, then
## fine-tuned for the shifts of real photos, five fine-tunes and the start averaged into one
## network, a model soup, averaged 3:1 with its fine-tune on the FERPlus votes; run in int8, its probabilities divided by the square root of the Training class
## frequencies and temperature-scaled on PublicTest; nothing else is fitted), scored on
## PublicTest and PrivateTest of FER2013, then compared with the model the package ships as `default`
## (models/ outputs are not tracked: git status stays clean). The most accurate is `make accurate`.
run: install
	$(BIN)/fer train --data $(DATA) --clf cnn-ensemble --cnn-checkpoint $(CNN) --precision int8 \
	  --prior-correction $(PRIOR) --out $(MODEL)
	$(BIN)/fer models compare $(MODEL) default

## The most accurate pipeline: three committed CNNs (large, a soup of a distilled compact one and
## its fine-tune, and the default's soup averaged with its fine-tune on FERPlus votes) in int8,
## their probabilities averaged and divided by
## the Training class frequencies to the power 1/4 (nothing is trained; under a minute). The most accurate
## hand-crafted + CNN feature pipeline (hog+lbp+landmarks+cnn -> svm) is in BENCHMARKS.md.
accurate: install
	$(BIN)/fer train --data $(DATA) --clf cnn-ensemble --cnn-checkpoint $(ACCURATE_CNNS) --precision int8 \
	  --prior-correction $(ACCURATE_PRIOR) --out $(ACCURATE_MODEL)
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
