"""``fer evaluate``: a model and a split → :func:`fer_features.training.evaluation.evaluate_split` → a report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from fer_features import config
from fer_features.cli.common import (
    CNN,
    DATA,
    OUTPUT,
    ClassesOpt,
    DataFormat,
    DataOpt,
    EvalSplit,
    FormatOpt,
    InferencePrecision,
    JsonOpt,
    LabelMode,
    LabelModeOpt,
    TrustPickleOpt,
    Tta,
    app,
    check_outputs,
    fail,
    load_data,
    load_options,
    read_model,
    require_extra,
)  # fmt: skip
from fer_features.cli.consoles import console

SplitOpt = Annotated[
    EvalSplit | None,
    typer.Option(
        help="Which usage split to score, or all: every image (with FER2013, Training too). Default: all for a folder "
        "of photos without split folders, else PrivateTest.",
        show_default=False,
    ),
]
PlotOpt = Annotated[
    Path | None, typer.Option(help="Also write the confusion matrix as this PNG (none without it).", rich_help_panel=OUTPUT)
]
SkipBadOpt = Annotated[
    bool,
    typer.Option(
        help="Leave out unreadable or malformed images instead of stopping (photos: listed, not counted in n).",
        rich_help_panel=DATA,
    ),
]


@app.command()
def evaluate(
    model: Annotated[
        Path, typer.Argument(help="A bundled model's name (default, accurate), a trained pipeline (.skops, or .joblib with "
                             "--trust-pickle), or a CNN checkpoint (.pt) scored directly.")
    ],
    data: DataOpt = config.DEFAULT_DATA,
    data_format: FormatOpt = DataFormat.auto,
    label_mode: LabelModeOpt = LabelMode.majority,
    classes: ClassesOpt = 7,
    split: SplitOpt = None,
    json_out: JsonOpt = False,
    plot: PlotOpt = None,
    skip_bad: SkipBadOpt = False,
    seed: Annotated[int, typer.Option(help="Seed of a photo folder's split: the --seed given to fer train.")] = 0,
    tta: Annotated[Tta, typer.Option(help="CNN checkpoint (.pt): test-time augmentation none, flip or ten-crop.", rich_help_panel=CNN)] = Tta.none,
    precision: Annotated[
        InferencePrecision, typer.Option(help="CNN checkpoint (.pt): inference arithmetic (int8: see fer quantize).", rich_help_panel=CNN)
    ] = InferencePrecision.auto,
    trust_pickle: TrustPickleOpt = False,
) -> None:
    """Score a trained pipeline on a split, or on every image: per-class report, accuracy,
    balanced accuracy, macro-F1, and for photos the faces found.

    Photos are detected and aligned first; one with no face (or several) is counted, listed and
    scored as wrong, so that [bold]--split all[/] scores every photo of a labelled folder (a folder
    without split folders defaults to it). An unreadable photo stops the command, or with
    --skip-bad is listed and left out. The confusion-matrix PNG is written only with --plot.
    """
    from fer_features.data.fer2013 import DataError
    from fer_features.training.evaluation import default_split, evaluate_split, format_report

    check_outputs((plot, False, "--plot"))
    if plot is not None:
        require_extra("matplotlib", "--plot (the confusion-matrix PNG)")
    pipe = read_model(model, trust_pickle=trust_pickle, tta=tta.value, precision=precision.value)
    dataset = load_data(data, data_format, load_options(skip_bad, label_mode, classes, seed=seed))
    split_name = split.value if split is not None else default_split(dataset)
    try:
        with console.status(f"scoring {split_name} images"):
            metrics = evaluate_split(pipe, dataset, split_name, plot=plot, name=model.stem, skip_bad=skip_bad)
    except DataError as exc:
        fail(str(exc))
    metrics = {"model": str(model), **metrics}
    if model.suffix == config.CHECKPOINT_SUFFIX:
        metrics.update(tta=tta.value, precision=pipe.inference_precision())
    if json_out:
        typer.echo(json.dumps(metrics, indent=2))
        return
    what = "photos" if metrics["face_detection"] else "faces"
    console.print(f"[bold]{model}[/] on {split_name} ({metrics['n']:,} {what})")
    console.print(format_report(metrics), highlight=False)
    if plot is not None:
        console.print(f"confusion matrix: {plot}")
