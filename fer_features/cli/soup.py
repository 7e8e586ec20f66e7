"""``fer soup``: fine-tunes of one network → their weights averaged (:func:`fer_features.cnn.checkpoints.average_checkpoints`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fer_features.cli.common import app, check_outputs, fail
from fer_features.cli.consoles import console


@app.command()
def soup(
    checkpoints: Annotated[list[Path], typer.Argument(help="Two or more CNN checkpoints (.pt) fine-tuned from one start.")],
    out: Annotated[Path, typer.Option(help="Where to write the averaged checkpoint (.pt).")],
) -> None:
    """Average the weights of networks fine-tuned from one start (a uniform model soup, Wortsman et al. 2022).

    The soup costs what one network costs at inference. It has no int8 calibration: run
    [bold]fer quantize OUT[/] before --precision int8.
    """
    from fer_features.cnn.checkpoints import average_checkpoints, save_checkpoint

    check_outputs((out, False, "--out"))
    try:
        ckpt = average_checkpoints(checkpoints)
    except (FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    save_checkpoint(ckpt, out)
    console.print(f"{out}: the mean of {len(checkpoints)} networks' weights written; int8: fer quantize {out}")
