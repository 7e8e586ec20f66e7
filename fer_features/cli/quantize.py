"""``fer quantize``: a CNN checkpoint and Training faces → :func:`fer_features.cnn.int8.add_int8_calibration`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fer_features import config
from fer_features.cli.common import (
    ClassesOpt,
    DataFormat,
    DataOpt,
    FormatOpt,
    LabelMode,
    LabelModeOpt,
    SkipBadOpt,
    app,
    check_outputs,
    fail,
    load_data,
    load_options,
)  # fmt: skip
from fer_features.cli.consoles import console


@app.command()
def quantize(
    checkpoint: Annotated[Path, typer.Argument(help="CNN checkpoint (.pt) from fer train --clf cnn.")],
    data: DataOpt = config.DEFAULT_DATA,
    data_format: FormatOpt = DataFormat.auto,
    label_mode: LabelModeOpt = LabelMode.majority,
    classes: ClassesOpt = 7,
    skip_bad: SkipBadOpt = False,
    out: Annotated[Path | None, typer.Option(help="Where to write (default: the checkpoint itself).")] = None,
) -> None:
    """Calibrate a CNN checkpoint for int8 inference on Training faces (then --precision int8 works).

    Also measures the fastest int8 batch size on this machine, which inference then uses.
    """
    from fer_features.cnn.int8 import CALIBRATION_FACES, add_int8_calibration

    check_outputs((out or checkpoint, False, "--out"))
    dataset = load_data(data, data_format, load_options(skip_bad, label_mode, classes))
    X_train = dataset.split("Training")[0]
    if len(X_train) == 0:
        fail(f"{data}: no Training faces to calibrate on")
    try:
        with console.status(f"calibrating int8 on {min(len(X_train), CALIBRATION_FACES):,} Training faces, timing batch sizes"):
            calibration = add_int8_calibration(checkpoint, X_train, out=out)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        fail(str(exc))
    rates = ", ".join(f"{size}: {rate:,}" for size, rate in calibration["faces_per_s"].items())
    console.print(
        f"{out or checkpoint}: int8 calibration ({calibration['engine']}, {calibration['n_faces']:,} faces) written; "
        f"batch size {calibration['batch_size']} (faces/s by batch size: {rates})"
    )
