"""``fer benchmark``: options → :func:`fer_features.benchmark.session.run_grid` → a table, files, JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from fer_features import config
from fer_features.cli.common import (
    CNN,
    FEATURES,
    OUTPUT,
    Backend,
    ClassesOpt,
    ClassWeight,
    ClfParamOpt,
    DataFormat,
    DataOpt,
    Device,
    DeviceOpt,
    FeatureParamOpt,
    FormatOpt,
    JsonOpt,
    LabelMode,
    LabelModeOpt,
    LimitOpt,
    Preset,
    SkipBadOpt,
    app,
    check_outputs,
    command_line,
    fail,
    feature_params,
    load_options,
)  # fmt: skip
from fer_features.cli.consoles import console, wide_console

GridOpt = Annotated[Path | None, typer.Option("--grid", help="TOML or YAML grid file (features, classifiers, baseline, pca, cv, ...).")]
SetsOpt = Annotated[list[str] | None, typer.Option(help="Feature sets to run (repeat or comma-separate), e.g. hog,hog+lbp. Default: the full grid.", rich_help_panel=FEATURES)]
HeadsOpt = Annotated[list[str] | None, typer.Option(help="Classifier heads to run (repeat or comma-separate). Default: svm, gbm, logreg, nystroem, mlp.", rich_help_panel=FEATURES)]
BaselineOpt = Annotated[bool | None, typer.Option("--baseline/--no-baseline", help="Score the CNN trained end to end (default: yes).")]
PcaOpt = Annotated[int | None, typer.Option(help=f"PCA components after scaling; 0 keeps every feature (default {config.DEFAULT_PCA}).", rich_help_panel=FEATURES)]
CvOpt = Annotated[int | None, typer.Option(help="Also k-fold CV accuracy on Training with this many folds (default 0: none).")]
WeightOpt = Annotated[ClassWeight | None, typer.Option(help="'balanced' weights classes by inverse frequency.", rich_help_panel=FEATURES)]
SeedOpt = Annotated[int | None, typer.Option(help="Seed of PCA, classifiers and CV folds (default 0).")]
CheckpointOpt = Annotated[Path, typer.Option(help="CNN for the cnn feature and the baseline; trained first (--preset, --epochs) if missing.", rich_help_panel=CNN)]
PresetOpt = Annotated[Preset, typer.Option(help="CNN size if it has to be trained.", rich_help_panel=CNN)]
EpochsOpt = Annotated[int, typer.Option(help="CNN epochs at most, if it has to be trained.", rich_help_panel=CNN)]
JobsOpt = Annotated[int, typer.Option(help="Cells run at once (processes; -1: one per core). Each gets cores/n_jobs threads.")]
BackendOpt = Annotated[Backend, typer.Option(help="Where cells run: local processes (joblib) or a Dask cluster.")]
SchedulerOpt = Annotated[str | None, typer.Option(help="Dask scheduler address, e.g. tcp://10.0.0.5:8786 (default: a local cluster).")]
CacheOpt = Annotated[Path | None, typer.Option(help="Feature and cell cache (default: ~/.cache/fer-features/benchmark).")]
ResultsOpt = Annotated[Path, typer.Option(help="Where the CSV, JSON, Markdown and PNG results go.", rich_help_panel=OUTPUT)]
ReportOpt = Annotated[Path | None, typer.Option(help="Also write this Markdown report (the repository's BENCHMARKS.md).", rich_help_panel=OUTPUT)]
SectionOpt = Annotated[
    str | None,
    typer.Option(help="Write the report as this section of --report (e.g. FERPlus), keeping the rest of the file.", rich_help_panel=OUTPUT),
]
ForceOpt = Annotated[bool, typer.Option(help="Recompute cached features and cells.")]


@app.command()
def benchmark(
    data: DataOpt = config.DEFAULT_DATA, data_format: FormatOpt = DataFormat.auto,
    label_mode: LabelModeOpt = LabelMode.majority, classes: ClassesOpt = 7, grid_file: GridOpt = None,
    features: SetsOpt = None, clf: HeadsOpt = None, baseline: BaselineOpt = None, pca: PcaOpt = None, cv: CvOpt = None,
    class_weight: WeightOpt = None, seed: SeedOpt = None, limit: LimitOpt = 0,
    cnn_checkpoint: CheckpointOpt = config.DEFAULT_CNN_CHECKPOINT, preset: PresetOpt = Preset.small,
    epochs: EpochsOpt = config.CNN_EPOCHS, device: DeviceOpt = Device.auto, n_jobs: JobsOpt = -1,
    backend: BackendOpt = Backend.local, scheduler: SchedulerOpt = None, cache_dir: CacheOpt = None,
    results_dir: ResultsOpt = config.DEFAULT_RESULTS_DIR, report: ReportOpt = None, report_section: SectionOpt = None,
    force: ForceOpt = False, feature_param: FeatureParamOpt = None, clf_param: ClfParamOpt = None,
    json_out: JsonOpt = False, skip_bad: SkipBadOpt = False,
) -> None:  # fmt: skip
    """Every feature set × classifier on the FER2013 protocol, plus the CNN baseline, in one table.

    Each extractor runs once over the data and is cached (keyed by the data fingerprint and its
    parameters), so the grid costs one extraction per feature; finished cells are cached too,
    so a run that stopped picks up where it was. Writes benchmark.csv/.json/.md and PNG plots to
    --results-dir, and with --report a BENCHMARKS.md.
    """
    from fer_features.benchmark.session import BenchmarkError, check_run, make_grid, run_grid
    from fer_features.cli.progress import BenchmarkReporter
    from fer_features.data.fer2013 import DataError
    from fer_features.training.settings import class_weight_for

    given = {"features": _names(features), "classifiers": _names(clf), "baseline": baseline, "cv": cv, "seed": seed, "pca": pca}
    overrides = {k: v for k, v in given.items() if v is not None}
    if class_weight is not None:
        overrides["class_weight"] = class_weight_for(class_weight.value)
    params = {"feature_params": feature_params(feature_param), "classifier_params": feature_params(clf_param, "--clf-param")}
    try:
        grid = make_grid(grid_file, overrides, params)
        check_run(grid, backend=backend.value, scheduler=scheduler, device=device.value)
    except (ValueError, FileNotFoundError) as exc:
        fail(str(exc))
    check_outputs((results_dir, True, "--results-dir"), (report, False, "--report"))
    if report_section is not None:
        _check_section(report, report_section)
    with BenchmarkReporter() as progress:
        try:
            records, meta, paths = run_grid(
                data, grid, limit=limit, cnn_checkpoint=cnn_checkpoint, cache_dir=cache_dir, n_jobs=n_jobs,
                cnn_params={"preset": preset.value, "epochs": epochs, "device": device.value}, backend=backend.value,
                scheduler=scheduler, force=force, results_dir=results_dir, report=report, report_section=report_section,
                data_format=data_format.value,
                load_options=load_options(skip_bad, label_mode, classes), command=command_line(), on_event=progress,
            )  # fmt: skip
        except (DataError, BenchmarkError) as exc:
            fail(str(exc))
    if json_out:
        typer.echo(json.dumps(records, indent=2, default=str))
        return
    print_benchmark(records)
    console.print(f"results: {', '.join(str(p) for p in paths.values())}" + (f"; report {report}" if report else ""))
    console.print(f"wall time {meta['wall_seconds']:.0f} s ({meta['cells_computed']} cells computed, {meta['cells_cached']} cached)")


def _check_section(report: Path | None, section: str) -> None:
    """Exit 2 now, before any work, if ``--report-section`` cannot be written into ``--report``."""
    from fer_features.benchmark.report import splice_section

    if report is None:
        fail("--report-section needs --report: the file the section goes into")
    try:
        splice_section(report.read_text(encoding="utf-8") if report.is_file() else "", section, ["# check"])
    except (ValueError, OSError) as exc:
        fail(f"{report}: {exc}")


def _names(values: list[str] | None) -> list[str] | None:
    """Repeatable, comma-separated option values → a list (None when not given)."""
    if not values:
        return None
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


def print_benchmark(records: list[dict]) -> None:
    """The cells as a rich table, the one PublicTest picks in bold."""
    from rich.table import Table

    from fer_features.benchmark.report import HEADERS, format_value, results_frame, without_empty_cv

    frame = without_empty_cv(results_frame(records))
    table = Table(title="fer benchmark (PublicTest selects, PrivateTest reports)")
    for col in frame.columns:
        table.add_column(HEADERS[col], justify="left" if col in ("features", "clf") else "right", no_wrap=col == "features")
    best = frame["public_accuracy"].idxmax() if frame["public_accuracy"].notna().any() else None
    for i, row in frame.iterrows():
        table.add_row(*(format_value(col, v) for col, v in row.items()), style="bold" if i == best else None)
    wide_console(180).print(table)
