"""Which cells a benchmark runs: feature sets × classifier heads, plus the CNN baseline."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from fer_features.config import DEFAULT_PCA

#: Feature sets of the default grid: each single extractor and the useful unions.
DEFAULT_FEATURE_SETS = (
    "hog",
    "lbp",
    "landmarks",
    "cnn",
    "hog+lbp",
    "hog+landmarks",
    "hog+lbp+landmarks",
    "hog+cnn",
    "hog+lbp+landmarks+cnn",
)
#: Classifier heads of the default grid: the exact SVM beside the fast heads (nystroem, mlp, logreg),
#: so the accuracy–speed trade-off is one plot (accuracy against predict img/s).
DEFAULT_CLASSIFIERS = ("svm", "gbm", "logreg", "nystroem", "mlp")
#: The name of the end-to-end CNN baseline cell.
BASELINE = "cnn"

_GRID_KEYS = {"features", "classifiers", "baseline", "pca", "seed", "cv", "class_weight", "feature_params", "classifier_params"}


@dataclass(frozen=True)
class Cell:
    """One benchmark cell: a feature set and a classifier head, or the CNN baseline.

    Attributes
    ----------
    features : str
        Feature spec (``"hog+lbp"``), or ``"pixels"`` for the end-to-end CNN.
    clf : str
        Classifier head name (``"svm"``), or ``"cnn"`` for the baseline.
    """

    features: str
    clf: str

    @property
    def is_baseline(self) -> bool:
        return self.clf == BASELINE

    @property
    def blocks(self) -> list[str]:
        """The single feature extractors the cell concatenates (none for the baseline)."""
        return [] if self.is_baseline else self.features.split("+")

    @property
    def name(self) -> str:
        return f"{self.features} → {self.clf}"

    @property
    def slug(self) -> str:
        """File-name form, e.g. ``hog-lbp_svm``."""
        return f"{self.features.replace('+', '-')}_{self.clf}"


@dataclass
class Grid:
    """A benchmark grid and the settings shared by its cells.

    Attributes
    ----------
    features : list of str
        Feature specs (names joined by ``+``).
    classifiers : list of str
        Classifier heads.
    baseline : bool
        Also score the CNN trained end to end.
    pca : int or None
        PCA components after scaling (None: every feature).
    seed : int
    cv : int
        Folds of an extra stratified k-fold score on Training (0: none).
    class_weight : {None, 'balanced'}
    feature_params : dict of {name: dict}
        Extractor parameters, e.g. ``{"hog": {"orientations": 12}}``.
    classifier_params : dict of {name: dict}
        Head parameters, e.g. ``{"svm": {"C": 5}}``.
    """

    features: list[str] = field(default_factory=lambda: list(DEFAULT_FEATURE_SETS))
    classifiers: list[str] = field(default_factory=lambda: list(DEFAULT_CLASSIFIERS))
    baseline: bool = True
    pca: int | None = DEFAULT_PCA
    seed: int = 0
    cv: int = 0
    class_weight: str | None = None
    feature_params: dict[str, dict] = field(default_factory=dict)
    classifier_params: dict[str, dict] = field(default_factory=dict)

    @property
    def needs_cnn(self) -> bool:
        """Whether a cell uses the CNN: the baseline, or a feature set with ``cnn``."""
        return self.baseline or any("cnn" in f.split("+") for f in self.features)

    def cells(self) -> list[Cell]:
        """Every cell, feature sets × classifiers, then the baseline."""
        out = [Cell(f, c) for f in self.features for c in self.classifiers]
        if self.baseline:
            out.append(Cell("pixels", BASELINE))
        return out

    def validate(self) -> Grid:
        """Check names and parameters; returns self.

        Raises
        ------
        ValueError
            For an unknown feature or classifier, a classifier that is not a feature head,
            a duplicate, or parameters given for a name the grid does not use.
        """
        from fer_features.features import parse_spec
        from fer_features.heads.registry import END_TO_END, list_classifiers

        if not self.features and not self.baseline:
            raise ValueError("the grid has no cells: give at least one feature set, or keep the CNN baseline")
        if self.features and not self.classifiers:
            raise ValueError("the grid has feature sets but no classifier")
        self.features = ["+".join(parse_spec(f)) for f in self.features]
        for clf in self.classifiers:
            if clf not in list_classifiers():
                raise ValueError(f"unknown classifier {clf!r}; valid names: {', '.join(list_classifiers())}")
            if clf == "cnn":
                raise ValueError(f"{clf!r} is the end-to-end baseline, not a feature head: it is in the grid unless --no-baseline")
            if clf in END_TO_END:
                raise ValueError(f"{clf!r} takes the face crops, not features: it is not a head of the grid (use fer train --clf {clf})")
        for kind, values in (("feature set", self.features), ("classifier", self.classifiers)):
            dupes = sorted({v for v in values if values.count(v) > 1})
            if dupes:
                raise ValueError(f"{kind} listed twice: {', '.join(dupes)}")
        used = {b for f in self.features for b in f.split("+")}
        if set(self.feature_params) - used:
            raise ValueError(f"feature_params for {', '.join(sorted(set(self.feature_params) - used))}, not in the grid")
        if set(self.classifier_params) - set(self.classifiers):
            raise ValueError(
                f"classifier_params for {', '.join(sorted(set(self.classifier_params) - set(self.classifiers)))}, not in the grid"
            )
        if self.pca is not None and int(self.pca) < 1:
            raise ValueError(f"pca must be a positive number of components (or 0/None for none), got {self.pca!r}")
        if self.cv == 1 or self.cv < 0:
            raise ValueError(f"cv must be 0 (none) or at least 2 folds, got {self.cv}")
        return self


def load_grid(path: str | Path) -> Grid:
    """Read a grid from a TOML or YAML file.

    Parameters
    ----------
    path : str or Path
        ``.toml`` (read with :mod:`tomllib`) or ``.yaml``/``.yml`` (PyYAML). Keys, all optional:
        ``features`` (list of specs), ``classifiers`` (list), ``baseline`` (bool), ``pca`` (int,
        0 for none), ``seed``, ``cv`` (folds, 0 for none), ``class_weight``, ``feature_params``
        (table per extractor) and ``classifier_params`` (table per head). Missing keys keep the
        default grid's value.

    Returns
    -------
    Grid
        Validated.

    Raises
    ------
    FileNotFoundError
        If the file is missing.
    ValueError
        If it cannot be parsed, has an unknown key, or names an unknown feature or classifier;
        the message names the file.

    Examples
    --------
    A TOML grid::

        features = ["hog", "lbp", "hog+lbp"]
        classifiers = ["svm", "logreg"]
        baseline = false
        [classifier_params.svm]
        C = 5
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such grid file")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".toml":
            raw = tomllib.loads(text)
        elif path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            raw = yaml.safe_load(text) or {}
        else:
            raise ValueError("expected a .toml, .yaml or .yml file")
    except (tomllib.TOMLDecodeError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read the grid ({exc})") from None
    except Exception as exc:  # yaml.YAMLError and friends
        raise ValueError(f"{path}: cannot read the grid ({exc.__class__.__name__}: {exc})") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: a grid file holds keys such as features = [...], classifiers = [...]")
    unknown = set(raw) - _GRID_KEYS
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}; valid keys: {', '.join(sorted(_GRID_KEYS))}")
    grid = Grid()
    for key, value in raw.items():
        if key in ("features", "classifiers"):
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError(f"{path}: {key} must be a list of names")
        setattr(grid, key, value)
    if grid.pca in (0, None):
        grid.pca = None
    try:
        return grid.validate()
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
