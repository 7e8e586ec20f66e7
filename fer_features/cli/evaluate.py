"""``fer evaluate``: a model and a split → :func:`fer_features.evaluation.evaluate_split` → a report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from fer_features import config
from fer_features.cli.common import (
    CNN, ClassesOpt, DataFormat, DataOpt, FormatOpt, InferencePrecision, JsonOpt, LabelMode, LabelModeOpt, SkipBadOpt, Split, Tta,
    TrustPickleOpt, app, check_outputs, console, fail, load_data, load_options, read_model,
)  # fmt: skip


@app.command()
def evaluate(
    model: Annotated[
        Path, typer.Argument(help="Trained pipeline (.skops, or .joblib with --trust-pickle), or a CNN checkpoint (.pt) scored directly.")
    ],
    data: DataOpt = config.DEFAULT_DATA,
    data_format: FormatOpt = DataFormat.auto,
    label_mode: LabelModeOpt = LabelMode.majority,
    classes: ClassesOpt = 7,
    split: Annotated[Split, typer.Option(help="Which usage split to score.")] = Split.PrivateTest,
    json_out: JsonOpt = False,
    plot: Annotated[Path | None, typer.Option(help="Confusion-matrix PNG (default: beside the model).")] = None,
    skip_bad: SkipBadOpt = False,
    seed: Annotated[int, typer.Option(help="Seed of a photo folder's split: the --seed given to fer train.")] = 0,
    tta: Annotated[Tta, typer.Option(help="CNN checkpoint (.pt): test-time augmentation none, flip or ten-crop.", rich_help_panel=CNN)] = Tta.none,
    precision: Annotated[
        InferencePrecision, typer.Option(help="CNN checkpoint (.pt): inference arithmetic (int8: see fer quantize).", rich_help_panel=CNN)
    ] = InferencePrecision.auto,
    trust_pickle: TrustPickleOpt = False,
) -> None:
    """Score a trained pipeline on one split: per-class report, accuracy, macro-F1, confusion matrix."""
    from fer_features.datasets import DataError
    from fer_features.evaluation import evaluate_split, format_report

    plot = plot or model.with_suffix(f".{split.value}{config.CONFUSION_SUFFIX}")
    check_outputs((plot, False, "--plot"))
    pipe = read_model(model, trust_pickle=trust_pickle, tta=tta.value, precision=precision.value)
    dataset = load_data(data, data_format, load_options(skip_bad, label_mode, classes, seed=seed))
    try:
        with console.status(f"scoring {split.value} faces"):
            metrics = evaluate_split(pipe, dataset, split.value, plot=plot, name=model.stem)
    except DataError as exc:
        fail(str(exc))
    metrics = {"model": str(model), **metrics}
    if model.suffix == config.CHECKPOINT_SUFFIX:
        metrics.update(tta=tta.value, precision=pipe.inference_precision())
    if json_out:
        typer.echo(json.dumps(metrics, indent=2))
        return
    console.print(f"[bold]{model}[/] on {split.value} ({metrics['n']:,} faces)")
    console.print(format_report(metrics), highlight=False)
    console.print(f"confusion matrix: {plot}")
