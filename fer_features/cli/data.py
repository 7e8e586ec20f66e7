"""``fer data inspect``: counts, data-quality findings and plots of a data set (:mod:`fer_features.data.inspection`)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from fer_features.cli.common import (
    ClassesOpt,
    DataArg,
    DataFormat,
    FormatOpt,
    JsonOpt,
    LabelMode,
    LabelModeOpt,
    app,
    check_outputs,
    load_data,
    load_options,
)  # fmt: skip
from fer_features.cli.consoles import console

data_app = typer.Typer(no_args_is_help=True, rich_markup_mode="rich", help="Look at data sets before training on them.")
app.add_typer(data_app, name="data")


@data_app.command("inspect")
def data_inspect(
    path: DataArg,
    data_format: FormatOpt = DataFormat.auto,
    label_mode: LabelModeOpt = LabelMode.majority,
    classes: ClassesOpt = 7,
    out: Annotated[Path | None, typer.Option(help="Folder for the PNGs (default: no plots).")] = None,
    per_class: Annotated[int, typer.Option(min=1, help="Images per class in the sample grid.")] = 8,
    blank_std: Annotated[float, typer.Option(help="Pixel std (grey levels) under which an image is near-blank.")] = 2.0,
    near: Annotated[bool, typer.Option(help="Also look for near duplicates (re-encoded copies).")] = True,
    seed: Annotated[int, typer.Option(help="Seed of the sample grid and of a photo folder's split.")] = 0,
    n_jobs: Annotated[int, typer.Option(help="Workers for face detection in photo folders; -1 all cores.")] = -1,
    json_out: JsonOpt = False,
) -> None:
    """Counts per class and split, data-quality findings (unreadable, near-blank, duplicate images) and plots.

    With [bold]--out DIR[/]: class_histogram.png, sample_grid.png and mean_faces.png. Unreadable
    files are reported, not fatal.
    """
    from fer_features.data.inspection import inspect_dataset, write_plots

    check_outputs((out, True, "--out"))
    t0 = time.perf_counter()
    dataset = load_data(path, data_format, load_options(True, label_mode, classes, seed=seed, n_jobs=n_jobs))
    report = inspect_dataset(dataset, blank_std=blank_std, near_duplicates=near)
    if out is not None:
        report["plots"] = write_plots(dataset, out, per_class=per_class, seed=seed)
    report["seconds"] = round(time.perf_counter() - t0, 2)
    if json_out:
        typer.echo(json.dumps(report, indent=2))
    else:
        print_inspection(report, path)


def print_inspection(report: dict, path: Path) -> None:
    """The findings of :func:`fer_features.data.inspection.inspect_dataset` as a table and a few lines."""
    from rich.table import Table

    usages = list(report["counts"])
    table = Table(title=f"{path}: {report['n_images']:,} images")
    table.add_column("class")
    for u in [*usages, "total"]:
        table.add_column(u, justify="right")
    for c in report["classes"]:
        row = [report["counts"][u][c] for u in usages]
        table.add_row(c, *[f"{v:,}" for v in row], f"{sum(row):,}")
    table.add_row("total", *[f"{sum(report['counts'][u].values()):,}" for u in usages], f"{report['n_images']:,}")
    console.print(table)
    console.print(f"unreadable files: {len(report['unreadable'])}")
    if report["photo_problems"]:
        p = report["photo_problems"]
        console.print(f"photos: {p['photos']}, no face {p['no_face']}, several faces {p['several_faces']}" + (f" (list: {p['problems_csv']})" if p["problems_csv"] else ""))
    b = report["blank"]
    console.print(f"near-blank images (pixel std < {b['threshold_std']:g}): {b['count']} " + ", ".join(f"{u} {n}" for u, n in b["by_split"].items() if n))
    near_title = f"near duplicates (mean |diff| < {report.get('near_duplicates', {}).get('max_mad', 0):g})"
    for key, title in (("exact_duplicates", "exact duplicates"), ("near_duplicates", near_title)):
        d = report.get(key)
        if d is None:
            continue
        pairs = ", ".join(f"{k} {v}" for k, v in d["cross_split_pairs"].items())
        console.print(
            f"{title}: {d['groups']} groups of {d['images']} images ({d['redundant_images']} redundant); within a split "
            f"{d['within_split_groups']}, across splits {d['cross_split_groups']}" + (f" ({pairs})" if pairs else "")
            + f"; with conflicting labels {d['conflicting_label_groups']}",
            highlight=False,
        )
    for name, file in report.get("plots", {}).items():
        console.print(f"{name}: {file}", highlight=False)
    console.print(f"{report['seconds']:.1f} s")
