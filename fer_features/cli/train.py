"""``fer train``: options → :func:`fer_features.training.train` → a printed summary."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fer_features import config
from fer_features.cli.common import (
    CNN, FEATURES, ClassesOpt, ClassWeight, ClassWeightOpt, DataFormat, DataOpt, Device, DeviceOpt, EpochsOpt,
    FeatureParamOpt, FormatOpt, LabelMode, LabelModeOpt, LimitOpt, NJobsOpt, PcaOpt, Preset, PresetOpt, SeedOpt,
    SkipBadOpt, app, command_line, console, fail, feature_params, load_options,
)  # fmt: skip
from fer_features.cli.common import Balance as BalanceMode


@app.command()
def train(
    data: DataOpt = config.DEFAULT_DATA,
    data_format: FormatOpt = DataFormat.auto,
    label_mode: LabelModeOpt = LabelMode.majority,
    classes: ClassesOpt = 7,
    augment: Annotated[bool, typer.Option(help="Add mirrored copies of the Training faces.", rich_help_panel=FEATURES)] = False,
    augment_shift: Annotated[int, typer.Option(min=0, help="With --augment, also one copy shifted by up to this many pixels.", rich_help_panel=FEATURES)] = 0,
    balance: Annotated[BalanceMode, typer.Option(help="Rare classes: none, class weights, or oversampling of Training.", rich_help_panel=FEATURES)] = BalanceMode.none,
    features: Annotated[str | None, typer.Option(help=f"Feature spec, names joined by '+' (see `fer list`). Default {config.DEFAULT_FEATURES}; none for --clf cnn.", rich_help_panel=FEATURES)] = None,
    clf: Annotated[str, typer.Option(help="Classifier head (see `fer list`).", rich_help_panel=FEATURES)] = config.DEFAULT_CLASSIFIER,
    out: Annotated[Path, typer.Option(help="Where to write the trained pipeline (.joblib).")] = config.DEFAULT_MODEL,
    pca: PcaOpt = config.DEFAULT_PCA,
    class_weight: ClassWeightOpt = ClassWeight.none,
    n_jobs: NJobsOpt = -1,
    seed: SeedOpt = 0,
    limit: LimitOpt = 0,
    skip_bad: SkipBadOpt = False,
    cache_dir: Annotated[Path | None, typer.Option(help="Cache extracted Training features here (Pipeline memory) for re-runs.")] = None,
    cnn_checkpoint: Annotated[Path | None, typer.Option(exists=True, dir_okay=False, help="Trained CNN (.pt) for the cnn feature; without it the CNN is trained first.", rich_help_panel=CNN)] = None,
    preset: PresetOpt = Preset.small,
    epochs: EpochsOpt = config.CNN_EPOCHS,
    device: DeviceOpt = Device.auto,
    feature_param: FeatureParamOpt = None,
) -> None:  # fmt: skip
    """Fit a pipeline on [bold]Training[/], report PublicTest and PrivateTest, save it with a model card.

    Writes OUT (joblib), OUT with .json (model card: features, classifier, parameters, data
    fingerprint, library versions, metrics, timings) and OUT with .confusion.png (PrivateTest).
    With [bold]--clf cnn[/] the network is trained end to end (best epoch on PublicTest) and its
    checkpoint written to OUT with .pt; an interrupted run resumes when run again. With the
    [bold]cnn[/] feature and no --cnn-checkpoint, that network is trained first (OUT with .cnn.pt).
    """
    from fer_features.cli.progress import Reporter
    from fer_features.datasets import DataError
    from fer_features.persist import card_path
    from fer_features.training import TrainSettings
    from fer_features.training import train as train_model

    cnn_params = {"preset": preset.value, "epochs": epochs, "device": device.value}
    try:
        settings = TrainSettings(
            features=features, clf=clf, pca=pca, class_weight=class_weight.value, balance=balance.value, augment=augment,
            augment_shift=augment_shift, n_jobs=n_jobs, seed=seed, limit=limit, cache_dir=cache_dir,
            cnn_checkpoint=cnn_checkpoint, cnn_params=cnn_params, feature_params=feature_params(feature_param),
        )  # fmt: skip
        settings.check(out)
    except (ValueError, FileNotFoundError) as exc:
        fail(str(exc))
    with Reporter() as report:
        try:
            _, card = train_model(data, settings=settings, out=out, data_format=data_format.value, command=command_line(),
                                  load_options=load_options(skip_bad, label_mode, classes), on_event=report)  # fmt: skip
        except DataError as exc:
            fail(str(exc))
    if "PrivateTest" in card.metrics:
        m = card.metrics["PrivateTest"]
        console.print(f"PrivateTest accuracy [bold]{m['accuracy']:.4f}[/], macro-F1 [bold]{m['macro_f1']:.4f}[/]")
    console.print(
        f"saved {out} (card {card_path(out)}); wall time {card.timings['total_seconds']:.0f} s, "
        f"peak memory {card.peak_memory_mb:.0f} MiB"
    )
