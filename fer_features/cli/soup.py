"""``fer soup``: fine-tunes of one network → their weights averaged (:func:`fer_features.cnn.soup.average_checkpoints`,
:func:`~fer_features.cnn.soup.greedy_soup`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fer_features import config
from fer_features.cli.common import (
    DataFormat,
    DataOpt,
    FormatOpt,
    LabelMode,
    app,
    check_outputs,
    fail,
    load_data,
    load_options,
)
from fer_features.cli.consoles import console


@app.command()
def soup(
    checkpoints: Annotated[
        list[Path],
        typer.Argument(help="CNN checkpoints (.pt) fine-tuned from one start (two or more without --greedy)."),
    ],
    out: Annotated[Path, typer.Option(help="Where to write the averaged checkpoint (.pt).")],
    greedy: Annotated[
        bool,
        typer.Option(
            "--greedy", help="Add each network, best first, only if PublicTest accuracy does not fall (a greedy soup)."
        ),
    ] = False,
    precision: Annotated[
        str,
        typer.Option(
            help="--greedy: judge the soups in fp32 or in int8 (each calibrated on Training faces, as fer quantize does)."
        ),
    ] = "fp32",
    data: DataOpt = config.DEFAULT_DATA,
    data_format: FormatOpt = DataFormat.auto,
) -> None:
    """Average the weights of networks fine-tuned from one start (a model soup, Wortsman et al. 2022).

    The soup costs what one network costs at inference. By default it is the uniform mean of all
    the networks; with [bold]--greedy[/] the networks are sorted by PublicTest accuracy and each
    joins only if the soup's PublicTest accuracy does not fall (--data: the FER2013 faces;
    PrivateTest is never used), judged in [bold]--precision int8[/] for a soup that will run in
    int8. The soup written has no int8 calibration: run [bold]fer quantize OUT[/] before running it in int8.
    """
    from fer_features.cnn.checkpoints import save_checkpoint
    from fer_features.cnn.soup import average_checkpoints

    check_outputs((out, False, "--out"))
    missing = [str(p) for p in checkpoints if not p.is_file()]
    if missing:  # before FER2013 is read
        fail(f"{missing[0]}: no such CNN checkpoint")
    if precision not in config.SOUP_PRECISIONS:
        fail(f"--precision {precision}: expected {' or '.join(config.SOUP_PRECISIONS)}")
    if not greedy and (data != Path(config.DEFAULT_DATA) or data_format != DataFormat.auto or precision != "fp32"):
        fail("--data, --format and --precision choose a greedy soup's members: add --greedy, or leave them out")
    try:
        ckpt = _greedy(checkpoints, data, data_format, precision) if greedy else average_checkpoints(checkpoints)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:  # RuntimeError: no int8 engine in this torch
        fail(str(exc))
    save_checkpoint(ckpt, out)
    if greedy:
        for step in ckpt["soup"]["ingredients"]:
            verdict = "kept" if step["kept"] else "left out"
            console.print(
                f"{step['checkpoint']}: alone {step['accuracy']:.4f}, soup with it {step['soup_accuracy']:.4f}: {verdict}"
            )
    n = len(ckpt["soup"]["members"])
    what = "the one network kept" if n == 1 else f"the mean of {n} networks' weights"
    console.print(f"{out}: {what} written; int8: fer quantize {out}")


def _greedy(checkpoints: list[Path], data: Path, data_format: DataFormat, precision: str) -> dict:
    """The greedy soup chosen on the PublicTest faces of ``data`` (int8: calibrated on its Training faces)."""
    from fer_features.cnn.soup import greedy_soup

    dataset = load_data(data, data_format, load_options(False, LabelMode.majority, 7))
    X, y = dataset.split("PublicTest")
    if not len(y):
        fail(f"{data}: no PublicTest faces to choose the soup's members on")
    calibration = dataset.split("Training")[0] if precision == "int8" else None
    if calibration is not None and not len(calibration):
        fail(f"{data}: no Training faces to calibrate the int8 soups on")
    with console.status(f"greedy soup of {len(checkpoints)} networks on {len(y)} PublicTest faces ({precision})"):
        return greedy_soup(checkpoints, X, y, precision=precision, calibration_faces=calibration)
