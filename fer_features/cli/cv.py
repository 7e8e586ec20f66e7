"""``fer cv``: options → :func:`fer_features.training.cv.cross_validate_pipeline` → a table or JSON."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from fer_features import config
from fer_features.cli.common import (
    FEATURES,
    ClassesOpt,
    ClassWeight,
    ClassWeightOpt,
    ClfOpt,
    DataFormat,
    DataOpt,
    FeatureParamOpt,
    FeaturesOpt,
    FormatOpt,
    JsonOpt,
    LabelMode,
    LabelModeOpt,
    PcaOpt,
    SeedOpt,
    SkipBadOpt,
    app,
    fail,
    feature_params,
    load_options,
)  # fmt: skip
from fer_features.cli.common import Balance as BalanceMode
from fer_features.cli.consoles import console

AugmentOpt = Annotated[bool, typer.Option(help="Add mirrored copies of each training fold's faces.", rich_help_panel=FEATURES)]
BalanceOpt = Annotated[BalanceMode, typer.Option(help="none, class weights, or oversampling of each training fold.", rich_help_panel=FEATURES)]
FoldsOpt = Annotated[int, typer.Option(min=2, help="Number of stratified folds.")]
CvJobsOpt = Annotated[int, typer.Option(help="Parallel workers inside each fold (extraction, calibration); -1 all cores.")]
CvLimitOpt = Annotated[int, typer.Option(help="Use at most this many Training images (0: all); for quick runs.")]


@app.command()
def cv(
    data: DataOpt = config.DEFAULT_DATA,
    data_format: FormatOpt = DataFormat.auto,
    label_mode: LabelModeOpt = LabelMode.majority,
    classes: ClassesOpt = 7,
    augment: AugmentOpt = False,
    balance: BalanceOpt = BalanceMode.none,
    features: FeaturesOpt = config.DEFAULT_FEATURES,
    clf: ClfOpt = config.DEFAULT_CLASSIFIER,
    folds: FoldsOpt = 5,
    pca: PcaOpt = config.DEFAULT_PCA,
    class_weight: ClassWeightOpt = ClassWeight.none,
    n_jobs: CvJobsOpt = -1,
    seed: SeedOpt = 0,
    limit: CvLimitOpt = 0,
    feature_param: FeatureParamOpt = None,
    json_out: JsonOpt = False,
    skip_bad: SkipBadOpt = False,
) -> None:
    """Stratified k-fold cross-validation on [bold]Training[/]: mean ± std accuracy and macro-F1, per-fold times.

    The folds are scikit-learn's StratifiedKFold (shuffled with --seed); PublicTest and
    PrivateTest are not touched.
    """
    from fer_features.cli.progress import Reporter
    from fer_features.data.fer2013 import DataError
    from fer_features.training.cv import cross_validate_pipeline
    from fer_features.training.settings import TrainSettings

    try:
        settings = TrainSettings(
            features=features, clf=clf, pca=pca, class_weight=class_weight.value, balance=balance.value,
            augment=augment, n_jobs=n_jobs, seed=seed, limit=limit, feature_params=feature_params(feature_param),
        )  # fmt: skip
        plan = settings.plan_cv()  # checked once, before any data is read
    except (ValueError, FileNotFoundError) as exc:
        fail(str(exc))
    with Reporter() as report:
        try:
            result = cross_validate_pipeline(data, plan=plan, folds=folds, data_format=data_format.value,
                                             load_options=load_options(skip_bad, label_mode, classes), on_event=report)  # fmt: skip
        except DataError as exc:
            fail(str(exc))
    if json_out:
        typer.echo(json.dumps(result, indent=2))
    else:
        console.print(cv_table(result))


def cv_table(result: dict):
    """Per-fold accuracy, macro-F1 and times, and mean ± std."""
    from rich.table import Table

    table = Table(title=f"{result['features']} → {result['classifier']}, {result['folds']}-fold CV on {result['n_images']:,} Training faces")
    for col in ("fold", "accuracy", "macro-F1", "fit (s)", "score (s)"):
        table.add_column(col, justify="right")
    for f in result["per_fold"]:
        table.add_row(str(f["fold"]), f"{f['accuracy']:.4f}", f"{f['macro_f1']:.4f}", f"{f['fit_seconds']:.1f}", f"{f['score_seconds']:.1f}")
    mean_acc = f"{result['accuracy_mean']:.4f} ± {result['accuracy_std']:.4f}"
    table.add_row("mean ± std", mean_acc, f"{result['macro_f1_mean']:.4f} ± {result['macro_f1_std']:.4f}", "", "")
    return table
