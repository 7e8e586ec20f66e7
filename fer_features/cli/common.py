"""What the commands share: the typer app, consoles, one-line errors, choices and option types.

Choices are generated from the library's tuples (:mod:`fer_features.config`) and registries
(:mod:`fer_features.registry`), so a new preset, detector or data format needs no change here. Nothing heavy is imported: ``fer --help`` stays instant.
"""

from __future__ import annotations

import shlex
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from fer_features import config
from fer_features.cli.consoles import err_console
from fer_features.cnn.presets import PRESETS
from fer_features.faces.detectors import DETECTORS

app = typer.Typer(
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_show_locals=False,
    help="Facial expression recognition with hand-crafted and learned features (FER2013 protocol).",
)


@app.callback()
def _main() -> None:
    """Facial expression recognition with hand-crafted and learned features (FER2013 protocol)."""
    from fer_features.cli.interrupts import shield_workers_from_ctrl_c

    shield_workers_from_ctrl_c()  # Ctrl-C: the command stops, no worker prints a traceback


def fail(message: str) -> None:
    """Print a one-line error and exit with code 2 (a user mistake, no traceback); the message is plain text, not markup."""
    from rich.markup import escape

    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=2)


def require_extra(module: str, what: str) -> None:
    """Exit 2 with the ``pip install 'fer-features[EXTRA]'`` line when an optional dependency is missing, before any work."""
    from fer_features.extras import import_optional

    try:
        import_optional(module, what)
    except ImportError as exc:
        fail(str(exc))


def command_line() -> str:
    """This process's command, as ``fer …`` (recorded in model cards and benchmark results)."""
    return "fer " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def choices(name: str, values) -> type[Enum]:
    """A str Enum of the given values, for a typer option's choices."""
    return Enum(name, {str(v): str(v) for v in values if v is not None}, type=str)


Split = choices("Split", config.USAGES)
EvalSplit = choices("EvalSplit", config.EVAL_SPLITS)
DataFormat = choices("DataFormat", config.DATA_FORMATS)
LabelMode = choices("LabelMode", config.LABEL_MODES)
Balance = choices("Balance", config.BALANCE_MODES)
ClassWeight = choices("ClassWeight", ("none", *config.CLASS_WEIGHTS))
Detector = choices("Detector", DETECTORS)
Device = choices("Device", config.DEVICES)
Preset = choices("Preset", PRESETS)
Backend = choices("Backend", config.BACKENDS)
Tta = choices("Tta", config.TTA_MODES)
Precision = choices("Precision", config.PRECISIONS)
InferencePrecision = choices("InferencePrecision", config.INFERENCE_PRECISIONS)

# --------------------------------------------------------------------------- option types

DATA, MODEL, FEATURES, CNN, DETECTION, OUTPUT = "Data", "Model", "Features and head", "CNN", "Face detection", "Output"
_DATA_HELP = "FER2013 challenge CSV (fer2013.csv[.gz]), zip or folder; FERPlus fer2013new.csv; or a folder of labelled photos."

DataOpt = Annotated[Path, typer.Option(help=_DATA_HELP, rich_help_panel=DATA)]
DataArg = Annotated[Path, typer.Argument(help=_DATA_HELP)]
FormatOpt = Annotated[
    DataFormat, typer.Option("--format", help="Data format; auto detects it from the path.", rich_help_panel=DATA)
]
LabelModeOpt = Annotated[
    LabelMode,
    typer.Option(help="FERPlus labels: majority vote, or the vote distribution (argmax for training).", rich_help_panel=DATA),
]
ClassesOpt = Annotated[int, typer.Option(min=7, max=8, help="FERPlus classes: 7, or 8 with contempt.", rich_help_panel=DATA)]
SkipBadOpt = Annotated[bool, typer.Option(help="Leave out unreadable or malformed images instead of stopping.", rich_help_panel=DATA)]
LimitOpt = Annotated[int, typer.Option(help="Use at most this many images per split (0: all); for quick runs.", rich_help_panel=DATA)]
SeedOpt = Annotated[int, typer.Option(help="Random seed (models, folds, a photo folder's split).")]
NJobsOpt = Annotated[int, typer.Option(help="Parallel workers for extraction and calibration; -1 all cores.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the results as JSON.", rich_help_panel=OUTPUT)]

FeaturesOpt = Annotated[str, typer.Option(help="Feature spec, names joined by '+' (see `fer list`).", rich_help_panel=FEATURES)]
ClfOpt = Annotated[str, typer.Option(help="Classifier head (see `fer list`).", rich_help_panel=FEATURES)]
PcaOpt = Annotated[int, typer.Option(help="PCA components after scaling; 0 keeps every feature.", rich_help_panel=FEATURES)]
ClassWeightOpt = Annotated[
    ClassWeight, typer.Option(help="'balanced' weights classes by inverse frequency.", rich_help_panel=FEATURES)
]
ClfParamOpt = Annotated[
    list[str] | None,
    typer.Option(
        help="Classifier parameter NAME.PARAM=VALUE, repeatable, e.g. svm.C=20 (over the grid file's classifier_params).",
        rich_help_panel=FEATURES,
    ),
]
FeatureParamOpt = Annotated[
    list[str] | None,
    typer.Option(
        help="Extractor parameter NAME.PARAM=VALUE, repeatable, e.g. hog.orientations=12 or vgg16.weights=vgg16.pth.",
        rich_help_panel=FEATURES,
    ),
]

PresetOpt = Annotated[
    Preset, typer.Option(help="CNN size: small (minutes), compact (int8-sized, distilled), medium (~1.5 h in bf16 on 2 CPU cores) or large (GPU).", rich_help_panel=CNN)
]
PrecisionOpt = Annotated[
    InferencePrecision,
    typer.Option(
        help="CNN arithmetic: auto = bf16 on CUDA and on CPUs with native bf16, else fp32; int8 = trained as auto, "
        "predicted in int8 (--clf cnn, cnn-ensemble).",
        rich_help_panel=CNN,
    ),
]
EpochsOpt = Annotated[int, typer.Option(help="CNN epochs at most (early stopping on PublicTest).", rich_help_panel=CNN)]
DeviceOpt = Annotated[
    Device, typer.Option(help="Torch device for the CNN: auto = cuda, else mps, else cpu.", rich_help_panel=CNN)
]

ModelOpt = Annotated[
    Path | None,
    typer.Option(
        envvar=config.ENV_MODEL,
        help=f"Trained pipeline file, or a bundled model's name ({', '.join(config.BUNDLED_MODELS)}; see `fer models`); "
        f"default ${config.ENV_MODEL}, else the bundled '{config.DEFAULT_MODEL}'.",
        rich_help_panel=MODEL,
    ),
]
DetectorOpt = Annotated[
    Detector,
    typer.Option(help="Face detector: yuface (libfacedetection CNN, fast, the default), hog (dlib HOG) or mmod (dlib CNN, slow).",
                 rich_help_panel=DETECTION),
]  # fmt: skip
UpsampleOpt = Annotated[
    int | None,
    typer.Option(min=0, max=2, help="Doublings of the detection resolution, finds smaller faces (default: 0 for yuface, 1 for hog/mmod).",
                 rich_help_panel=DETECTION),
]  # fmt: skip
TrustPickleOpt = Annotated[
    bool,
    typer.Option("--trust-pickle", help="Also load a pickle-based (.joblib) model: it can run code, so only one you made yourself.",
                 rich_help_panel=MODEL),
]  # fmt: skip
MaxPixelsOpt = Annotated[
    int | None,
    typer.Option(min=1, help="Largest photo read, in pixels (default 25,000,000 or $FER_MAX_PIXELS); a larger one is an error row.",
                 rich_help_panel=DETECTION),
]  # fmt: skip
MinScoreOpt = Annotated[
    float | None,
    typer.Option(help="Drop detections scoring lower (default: 0.5 for yuface, 0.3 for hog, 0 for mmod).", rich_help_panel=DETECTION),
]


def feature_params(items: list[str] | None, option: str = "--feature-param") -> dict[str, dict]:
    """``--feature-param`` (or ``--clf-param``) values → ``{name: {param: value}}``; a malformed one is a user error."""
    from fer_features.features import parse_feature_params

    try:
        return parse_feature_params(items or [], option)
    except ValueError as exc:
        fail(str(exc))


def load_options(skip_bad: bool, label_mode: LabelMode, classes: int, **extra) -> dict:
    """The loading options of :func:`fer_features.data.sources.load_dataset` from the data options."""
    return {"skip_bad": skip_bad, "label_mode": label_mode.value, "classes": classes, **extra}


def load_data(path: Path, data_format: DataFormat, options: dict):
    """Load a data source with a spinner and its notes (skipped files, photos left out); errors exit 2."""
    from fer_features.cli.progress import Reporter
    from fer_features.data.fer2013 import DataError
    from fer_features.data.sources import load_data as load

    with Reporter() as report:
        try:
            return load(path, data_format.value, on_event=report, **options)
        except DataError as exc:
            fail(str(exc))


def check_outputs(*outputs: tuple[Path | None, bool, str]) -> None:
    """``(path, is_folder, option)`` each writable, before any work starts; else one line and exit 2."""
    from fer_features.persist.outputs import OutputError, check_writable

    for path, folder, option in outputs:
        if path is not None:
            try:
                check_writable(path, folder=folder, option=option)
            except OutputError as exc:
                fail(str(exc))


def model_note(path: Path | None, model_format: str | None, bundled: str | None) -> None:
    """Say on stderr which model file was read, and in which format (or which bundled model)."""
    if path is None:
        return
    if bundled is not None:
        how = f"the bundled model '{bundled}'"
    elif model_format == "checkpoint":
        how = "CNN checkpoint"
    elif model_format == "skops":
        how = "skops format"
    else:
        how = "pickle (joblib) format, trusted with --trust-pickle"
    err_console.print(f"model {path} ({how})", highlight=False, soft_wrap=True)


def read_model(path: Path | None, *, trust_pickle: bool = False, **options):
    """The checked model of ``path`` (:func:`fer_features.persist.files.open_model`); a bad one exits 2."""
    from fer_features.persist.files import ModelError, open_model

    try:
        loaded = open_model(path, trusted=trust_pickle, **options)
    except ModelError as exc:
        fail(str(exc))
    model_note(loaded.path, loaded.format, loaded.bundled)
    return loaded.model


def open_recognizer(model: Path | None, *, trust_pickle: bool = False, **options):
    """A :class:`~fer_features.Recognizer` for ``--model``; a missing, bad or untrusted model file exits 2."""
    from fer_features.inference.recognizer import Recognizer
    from fer_features.persist.files import ModelError

    try:
        recognizer = Recognizer(model, progress=False, trusted=trust_pickle, **options)
    except (ModelError, ImportError) as exc:
        fail(str(exc))
    model_note(recognizer.model_path, recognizer.model_format, recognizer.bundled_model)
    return recognizer
