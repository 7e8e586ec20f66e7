"""``fer models``: the bundled models and yours (:func:`fer_features.models.list_models`), and ``fer models compare``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from fer_features.cli.common import JsonOpt, app, fail
from fer_features.cli.consoles import console, wide_console

models_app = typer.Typer(no_args_is_help=False, rich_markup_mode="rich")
app.add_typer(models_app, name="models")


def _fmt(value, spec: str = ".4f") -> str:
    return "–" if value is None else format(value, spec)


@models_app.callback(invoke_without_command=True)
def models(
    ctx: typer.Context,
    folder: Annotated[
        Path, typer.Option(help="A folder of your models (*.skops, *.pt, *.joblib) listed after the bundled ones.")
    ] = Path("models"),
    json_out: JsonOpt = False,
) -> None:
    """List the models shipped in the package and those in ./models: classes, PrivateTest accuracy and macro-F1, crops/s, size, data, command.

    A bundled model is picked by its name wherever a model is asked for ([bold]fer predict --model accurate[/],
    [bold]Recognizer("accurate")[/], [bold]$FER_MODEL[/]). Crops/s is what [bold]fer train[/] measured classifying
    PrivateTest's 3,589 faces in one call, on the machine that trained the model (its card says which).
    """
    if ctx.invoked_subcommand is not None:
        return
    from rich import box
    from rich.table import Table

    from fer_features.models import list_models

    if folder != Path("models") and not folder.is_dir():
        fail(f"--folder {folder}: no such folder")
    rows = list_models(folder)
    if json_out:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(box=box.SIMPLE_HEAD, show_lines=False)
    for column in ("name", "source", "classes", "PrivateTest acc.", "macro-F1", "crops/s", "MB"):
        table.add_column(column, justify="right" if column[0].isupper() or column in ("crops/s", "MB", "classes") else "left")
    for row in rows:
        table.add_row(
            row["name"], row["source"] if row["source"] == "bundled" else str(Path(row["path"]).parent),
            str(len(row["classes"])) if row["classes"] else "–", _fmt(row["accuracy"]), _fmt(row["macro_f1"]),
            _fmt(row["crops_per_second"], ",d"), _fmt(row["size_mb"], ".1f"),
        )  # fmt: skip
    out = wide_console(100)
    out.print(table)
    for row in rows:
        machine = row["machine"] or {}
        where = machine.get("cpu") or machine.get("processor")
        measured = f"; crops/s on {where}, 1-min load {machine.get('load_average_1min', '–')}" if where else ""
        what = f"{row['features'] or '–'} → {row['classifier'] or '–'}"
        out.print(f"[bold]{row['name']}[/]: {what}; data {row['data'] or '–'}{measured}", highlight=False)
        out.print(f"  {row['command'] or '(no model card)'}", highlight=False, soft_wrap=True)


@models_app.command("compare")
def compare(
    model: Annotated[Path, typer.Argument(help="A model you trained (its card beside it), e.g. models/fer-default.skops.")],
    reference: Annotated[str, typer.Argument(help="The model to compare with: a bundled model's name or a file.")] = "default",
    json_out: JsonOpt = False,
) -> None:
    """Say whether MODEL scores as REFERENCE does (PublicTest and PrivateTest accuracy and macro-F1, from their cards).

    [bold]make run[/] ends with it: the default rebuilt from FER2013 against the bundled one.
    """
    from fer_features.models import compare_cards

    try:
        result = compare_cards(model, reference)
    except ValueError as exc:
        fail(str(exc))
    if json_out:
        typer.echo(json.dumps(result, indent=2))
        return
    for row in result["rows"]:
        console.print(
            f"  {row['split']:11s} {row['metric']:8s} {row['model']:.4f} (this) vs {row['reference']:.4f} ({reference})"
            f"  {row['difference']:+.4f}", highlight=False,
        )  # fmt: skip
    verdict = {"same": "scores the same as", "close": "scores within a few faces of", "different": "does not score the same as"}
    console.print(f"[bold]{model}[/] {verdict[result['verdict']]} [bold]{reference}[/] ({result['reference']})",
                  highlight=False, soft_wrap=True)  # fmt: skip
    mine, theirs = result["cpus"]
    if result["verdict"] != "same" and mine and theirs and mine != theirs:
        console.print(f"  the cards name different CPUs ({mine} / {theirs}): int8 arithmetic differs a little between them",
                      highlight=False, soft_wrap=True)  # fmt: skip
