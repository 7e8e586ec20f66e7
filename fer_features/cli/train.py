"""``fer train``: options → :func:`fer_features.training.run.train` → a printed summary."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fer_features import config
from fer_features.cli.common import (
    CNN,
    FEATURES,
    ClassesOpt,
    ClassWeight,
    ClassWeightOpt,
    ClfOpt,
    DataFormat,
    DataOpt,
    Device,
    DeviceOpt,
    EpochsOpt,
    FeatureParamOpt,
    FormatOpt,
    InferencePrecision,
    LabelMode,
    LabelModeOpt,
    LimitOpt,
    NJobsOpt,
    PcaOpt,
    PrecisionOpt,
    Preset,
    PresetOpt,
    SeedOpt,
    SkipBadOpt,
    app,
    check_outputs,
    command_line,
    fail,
    load_options,
    require_extra,
)  # fmt: skip
from fer_features.cli.common import Balance as BalanceMode
from fer_features.cli.consoles import console

CnnParamOpt = Annotated[
    list[str] | None,
    typer.Option(help="CNN training parameter KEY=VALUE, repeatable, e.g. ema=0.999, mixup=0.2, label_smoothing=0.1.", rich_help_panel=CNN),
]
AugmentOpt = Annotated[bool, typer.Option(help="Add mirrored copies of the Training faces.", rich_help_panel=FEATURES)]
ShiftOpt = Annotated[int, typer.Option(min=0, help="With --augment, also one copy shifted by up to this many pixels.", rich_help_panel=FEATURES)]
BalanceOpt = Annotated[BalanceMode, typer.Option(help="Rare classes: none, class weights, or oversampling of Training.", rich_help_panel=FEATURES)]
SpecOpt = Annotated[str | None, typer.Option(help=f"Feature spec, names joined by '+' (see `fer list`). Default {config.DEFAULT_FEATURES}; none for --clf cnn.", rich_help_panel=FEATURES)]
OutOpt = Annotated[Path, typer.Option(help="Where to write the trained pipeline: .skops (safe to share), or .joblib (a pickle).")]
CacheOpt = Annotated[Path | None, typer.Option(help="Cache extracted Training features here (Pipeline memory) for re-runs.")]
CheckpointOpt = Annotated[
    Path | None,
    typer.Option(
        help="Trained CNN (.pt) for the cnn feature; without it the CNN is trained first. For --clf cnn-ensemble: its networks, a.pt+b.pt.",
        rich_help_panel=CNN,
    ),
]
CalibrateOpt = Annotated[
    bool,
    typer.Option(
        help="Fit a temperature on PublicTest that makes the head's probabilities as sure as it is accurate (labels unchanged).",
        rich_help_panel=FEATURES,
    ),
]
PriorOpt = Annotated[
    float,
    typer.Option(
        min=0.0,
        help="--clf cnn-ensemble: divide its probabilities by the Training class frequencies to this power "
        "(logit adjustment; 0: none, 1: balanced classes): more recall of rare classes, less accuracy on FER2013's mix.",
        rich_help_panel=CNN,
    ),
]
LogFileOpt = Annotated[Path | None, typer.Option(help="Append each CNN epoch's record (JSON) to this file, for long runs.", rich_help_panel=CNN)]


@app.command()
def train(
    data: DataOpt = config.DEFAULT_DATA, data_format: FormatOpt = DataFormat.auto,
    label_mode: LabelModeOpt = LabelMode.majority, classes: ClassesOpt = 7,
    augment: AugmentOpt = False, augment_shift: ShiftOpt = 0, balance: BalanceOpt = BalanceMode.none,
    features: SpecOpt = None, clf: ClfOpt = config.DEFAULT_CLASSIFIER, out: OutOpt = config.DEFAULT_TRAIN_OUT,
    pca: PcaOpt = config.DEFAULT_PCA, class_weight: ClassWeightOpt = ClassWeight.none, n_jobs: NJobsOpt = -1,
    seed: SeedOpt = 0, limit: LimitOpt = 0, skip_bad: SkipBadOpt = False, cache_dir: CacheOpt = None,
    cnn_checkpoint: CheckpointOpt = None, preset: PresetOpt = Preset.small, epochs: EpochsOpt = config.CNN_EPOCHS,
    device: DeviceOpt = Device.auto, precision: PrecisionOpt = InferencePrecision.auto, cnn_param: CnnParamOpt = None,
    log_file: LogFileOpt = None, feature_param: FeatureParamOpt = None, calibrate: CalibrateOpt = False,
    prior_correction: PriorOpt = 0.0,
) -> None:  # fmt: skip
    """Fit a pipeline on [bold]Training[/], report PublicTest and PrivateTest, save it with a model card.

    Writes OUT (skops; a pickle with joblib for a .joblib name), OUT with .json (model card:
    features, classifier, parameters, data fingerprint, library versions, metrics, timings) and
    OUT with .confusion.png (PrivateTest), moved into place together at the end.
    With [bold]--clf cnn[/] the network is trained end to end (best epoch on PublicTest) and its
    checkpoint written to OUT with .pt; an interrupted run resumes when run again. With the
    [bold]cnn[/] feature and no --cnn-checkpoint, that network is trained first (OUT with .cnn.pt).
    """
    from fer_features.cli.progress import Reporter
    from fer_features.data.fer2013 import DataError
    from fer_features.persist.outputs import OutputError
    from fer_features.training.cnn import log_cnn_epochs
    from fer_features.training.run import train as train_model
    from fer_features.training.settings import TrainSettings

    check_outputs((log_file, False, "--log-file"))  # --out: train() checks it before any data is read
    require_extra("matplotlib", "fer train (its confusion-matrix PNG)")
    if log_file is not None:
        log_cnn_epochs(log_file)
    try:
        cnn_params = {"preset": preset.value, "epochs": epochs, "device": device.value, "precision": precision.value}
        if prior_correction:
            cnn_params["prior_correction"] = prior_correction
        settings = TrainSettings(
            features=features, clf=clf, pca=pca, class_weight=class_weight.value, balance=balance.value, augment=augment,
            augment_shift=augment_shift, n_jobs=n_jobs, seed=seed, limit=limit, cache_dir=cache_dir,
            cnn_checkpoint=cnn_checkpoint, cnn_params=cnn_params, cnn_param_items=tuple(cnn_param or ()),
            feature_params=list(feature_param or ()), calibrate=calibrate,
        )  # the --cnn-param and --feature-param items are parsed there, with the spec  # fmt: skip
        plan = settings.plan(out)  # checked once, before any data is read
    except (ValueError, FileNotFoundError) as exc:
        fail(str(exc))
    with Reporter() as report:
        try:
            _, card = train_model(data, plan=plan, data_format=data_format.value, command=command_line(),
                                  load_options=load_options(skip_bad, label_mode, classes), on_event=report)  # fmt: skip
        except (DataError, OutputError) as exc:
            fail(str(exc))
    print_summary(card, out)


def print_summary(card, out: Path) -> None:
    """PrivateTest accuracy and macro-F1, where the model went, wall time and peak memory."""
    from fer_features.persist.cards import card_path

    if "PrivateTest" in card.metrics:
        m = card.metrics["PrivateTest"]
        console.print(f"PrivateTest accuracy [bold]{m['accuracy']:.4f}[/], macro-F1 [bold]{m['macro_f1']:.4f}[/]")
    console.print(
        f"saved {out} (card {card_path(out)}); wall time {card.timings['total_seconds']:.0f} s, "
        f"peak memory {card.peak_memory_mb:.0f} MiB"
    )
