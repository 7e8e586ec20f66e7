"""Names and defaults of fer-features, in one place.

Every module and the ``fer`` command take their class names, splits, file endings, default
paths, cache folders and environment variables from here, and the command's choices (``--split``,
``--format``, ``--device`` …) are generated from these tuples, so a name is spelled once. The
names of things that are built (features, heads, face detectors, CNN sizes) are their
registries' (:mod:`fer_features.registry`), not tuples here.

Importing this module is free: it needs nothing beyond the standard library.
"""

from __future__ import annotations

import os
from pathlib import Path

# --------------------------------------------------------------------------- classes and splits

#: The seven FER2013 classes, in label order 0..6.
EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")

#: FERPlus's eight classes: FER2013's seven, then contempt (label 7).
EMOTIONS8: tuple[str, ...] = EMOTIONS + ("contempt",)

#: The three usage splits of the standard protocol: train, select, report.
USAGES: tuple[str, ...] = ("Training", "PublicTest", "PrivateTest")
#: ``fer evaluate --split``: one usage split, or ``all`` (every image of the data).
ALL_SPLITS = "all"
EVAL_SPLITS: tuple[str, ...] = (*USAGES, ALL_SPLITS)

#: Side of a FER2013 face crop (and of the crops aligned from photos), in pixels.
IMAGE_SIZE = 48

# --------------------------------------------------------------------------- files

#: File endings read as images (folders of photos, ``fer predict`` on a folder).
IMAGE_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")

#: File endings taken for videos by ``fer predict``.
VIDEO_SUFFIXES: tuple[str, ...] = (".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv")

#: Suffixes of the files written beside a model ``NAME.joblib``.
MODEL_SUFFIX = ".skops"
CARD_SUFFIX = ".json"
CONFUSION_SUFFIX = ".confusion.png"
CHECKPOINT_SUFFIX = ".pt"

# --------------------------------------------------------------------------- choices

#: Data formats of ``--format``: ``auto`` detects the format from the path.
DATA_FORMATS: tuple[str, ...] = ("auto", "fer2013", "ferplus", "photos")

#: FERPlus labels: the majority vote, or the vote distribution.
LABEL_MODES: tuple[str, ...] = ("majority", "probability")

#: Rare-class handling of Training: nothing, class weights, or oversampling.
BALANCE_MODES: tuple[str, ...] = ("none", "weights", "oversample")

#: ``class_weight`` of the heads: every image the same (``None``), or inverse class frequency.
CLASS_WEIGHTS: tuple[str | None, ...] = (None, "balanced")

#: The detector of ``fer predict``, ``fer serve`` and :func:`fer_features.faces.alignment.find_faces`,
#: chosen by measurement (BENCHMARKS.md, section "Face detectors and alignment").
DEFAULT_DETECTOR = "yuface"

#: Torch devices; ``auto`` is CUDA, else Apple MPS, else the CPU.
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda", "mps")

#: CNN arithmetic: bf16 autocast where it is fast (CUDA, CPUs with native bf16), or float32.
PRECISIONS: tuple[str, ...] = ("auto", "bf16", "fp32")
#: CNN inference arithmetic: the training ones and ``int8`` (:mod:`fer_features.cnn.int8`).
INFERENCE_PRECISIONS: tuple[str, ...] = (*PRECISIONS, "int8")
#: The arithmetic a greedy model soup is judged in (:func:`fer_features.cnn.soup.greedy_soup`).
SOUP_PRECISIONS: tuple[str, ...] = ("fp32", "int8")

#: Test-time augmentation of the CNN: none, the mirror image, or ten crops (corners, centre, mirrored).
TTA_MODES: tuple[str, ...] = ("none", "flip", "ten-crop")
#: The test-time augmentations scored apart from the plain PrivateTest score: metric name → mode.
TTA_REPORTS = (("PrivateTest+TTA", "flip"), ("PrivateTest+TTA10", "ten-crop"))

#: Where ``fer benchmark`` runs its cells.
BACKENDS: tuple[str, ...] = ("local", "dask")

# --------------------------------------------------------------------------- defaults

#: The default hand-crafted pipeline of ``fer train`` and ``make run``.
DEFAULT_FEATURES = "hog+lbp+landmarks"
DEFAULT_CLASSIFIER = "svm"
#: PCA components after scaling (``None`` or 0 on the command line: keep every feature).
DEFAULT_PCA = 256
#: Most epochs of a CNN training run (early stopping on PublicTest may end it sooner).
CNN_EPOCHS = 25

#: The FER2013 data, relative to the repository root.
DEFAULT_DATA = Path("../shared/data/fer2013.csv.gz")
#: The trained models shipped inside the package, by name: ``fer_features/models/NAME.skops`` with
#: its model card ``NAME.json`` (``fer models`` lists them). ``default`` is what ``make run`` builds
#: (a compact CNN in int8, its probabilities prior-corrected); ``accurate`` what ``make accurate``
#: builds (three CNNs in int8, their probabilities averaged and prior-corrected).
BUNDLED_MODELS: tuple[str, ...] = ("default", "accurate")
#: The bundled model ``fer predict``, ``fer evaluate``, ``fer serve`` and ``Recognizer()`` use when
#: no model is given and ``$FER_MODEL`` is unset.
DEFAULT_MODEL = "default"
#: Where ``fer train`` writes when no ``--out`` is given (relative to the working folder; never
#: inside the installed package).
DEFAULT_TRAIN_OUT = Path("models") / "fer-default.skops"
#: The committed CNN checkpoint of the ``cnn`` feature and the benchmark's baseline.
DEFAULT_CNN_CHECKPOINT = Path("models") / "cnn-small.pt"
#: Where ``fer benchmark`` writes its CSV, JSON, Markdown and plots.
DEFAULT_RESULTS_DIR = Path("benchmarks") / "results"

# --------------------------------------------------------------------------- environment

#: Model file used when none is given.
ENV_MODEL = "FER_MODEL"
#: Cache folder (decoded data, photo folders, benchmark features).
ENV_CACHE = "FER_FEATURES_CACHE"
#: Folder of dlib's model files, in place of the ``face-recognition-models`` package.
ENV_DLIB_MODELS = "FER_FEATURES_DLIB_MODELS"
#: Where the browser test saves screenshots of the demo page.
ENV_SCREENSHOTS = "FER_SCREENSHOTS"

#: Version of every on-disk cache (decoded data, photo folders, benchmark features and cells):
#: raising it makes all of them recompute.
CACHE_VERSION = "1"
#: Cache sub-folder of ``fer benchmark`` (feature matrices and finished cells).
BENCHMARK_CACHE = "benchmark"


def default_cache_dir(kind: str | None = None) -> Path:
    """Folder for caches: ``$FER_FEATURES_CACHE``, else ``$XDG_CACHE_HOME/fer-features`` (``~/.cache``).

    Parameters
    ----------
    kind : str, optional
        A sub-folder, e.g. :data:`BENCHMARK_CACHE`.
    """
    env = os.environ.get(ENV_CACHE)
    root = Path(env) if env else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "fer-features"
    return root / kind if kind else root
