"""``fer robustness``: a model and FER2013 → :func:`fer_features.benchmark.robustness.run_robustness` → a table, files."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from fer_features import config
from fer_features.cli.common import (
    DATA,
    OUTPUT,
    DataFormat,
    DataOpt,
    Detector,
    DetectorOpt,
    FormatOpt,
    JsonOpt,
    LabelMode,
    ModelOpt,
    TrustPickleOpt,
    Tta,
    app,
    check_outputs,
    command_line,
    fail,
    load_data,
    load_options,
    read_model,
)  # fmt: skip
from fer_features.cli.consoles import console, wide_console

SplitsOpt = Annotated[
    list[str] | None,
    typer.Option("--split", help="PublicTest (selects) and/or PrivateTest (reports); repeat or comma-separate. Default: both."),
]
ShiftsOpt = Annotated[
    list[str] | None,
    typer.Option("--shift", help="Shifts to run (repeat or comma-separate; see the docs' Robustness page). Default: all."),
]
LimitOpt = Annotated[int, typer.Option(min=0, help="Faces per split for the crop shifts, stratified and seeded (0: all).", rich_help_panel=DATA)]
FramingOpt = Annotated[
    int, typer.Option(min=0, help="Faces per split made into photos for the framing shift (detector path; 0 skips it).", rich_help_panel=DATA)
]
EyesOpt = Annotated[
    int,
    typer.Option(min=0, help="Also measure eye positions and face size in this many FER2013 crops and the pipeline's crops (0: skip)."),
]
SeedOpt = Annotated[int, typer.Option(help="Seed of the samples and of every shift.")]
TtaOpt = Annotated[Tta, typer.Option(help="CNN checkpoint (.pt): test-time augmentation none, flip or ten-crop.")]
OutOpt = Annotated[Path | None, typer.Option("--out", help="Write the rows to this .csv or .json.", rich_help_panel=OUTPUT)]
CardOpt = Annotated[
    Path | None,
    typer.Option(
        help="Add the results to this model card (.json) as \"robustness\" (\"robustness_ferplus\" for FERPlus labels); never a bundled model's.",
        rich_help_panel=OUTPUT,
    ),
]


@app.command()
def robustness(
    model: ModelOpt = None,
    data: DataOpt = config.DEFAULT_DATA,
    data_format: FormatOpt = DataFormat.auto,
    split: SplitsOpt = None,
    shift: ShiftsOpt = None,
    limit: LimitOpt = 0,
    framing_n: FramingOpt = 1000,
    eyes: EyesOpt = 0,
    detector: DetectorOpt = Detector(config.DEFAULT_DETECTOR),
    seed: SeedOpt = 0,
    out: OutOpt = None,
    card: CardOpt = None,
    json_out: JsonOpt = False,
    trust_pickle: TrustPickleOpt = False,
    tta: TtaOpt = Tta.none,
) -> None:
    """Accuracy and balanced accuracy of a model on FER2013 faces under the shifts of real photos.

    Framing (the face pasted into a larger photo, found and aligned by the photo pipeline),
    rotation, blur, JPEG, low resolution, brightness, contrast, gamma, noise, sunglasses and a
    hand, at 2-3 severities each, seeded. Prints each shift and severity, each shift's mean and
    the overall mean (on PublicTest: the "shifted PublicTest" score of model selection).
    With --data fer2013new.csv: the FERPlus majority labels of the same faces (card: robustness_ferplus).
    """
    from fer_features.benchmark.robustness import label_set, run_robustness
    from fer_features.benchmark.shifts import RobustnessError

    splits, shifts = _checked_options(split, shift, out, card)
    pipe = read_model(model, trust_pickle=trust_pickle, tta=tta.value)
    dataset = load_data(data, data_format, load_options(False, LabelMode.majority, 7))
    start = time.perf_counter()
    rows = []
    with console.status("shifting faces") as status:

        def progress(kind: str, row: dict) -> None:
            rows.append(row)
            status.update(f"{row['split']}: {row['shift']} {row['severity']} done ({row['accuracy']:.3f})")

        try:
            frame = run_robustness(pipe, dataset, splits=splits, shifts=shifts, limit=limit, framing_n=framing_n,
                                   seed=seed, detector=detector.value, on_event=progress)  # fmt: skip
        except RobustnessError as exc:
            fail(str(exc))
        stats = None
        if eyes:
            from fer_features.benchmark.robustness import framing_comparison

            status.update("measuring eye positions and face size")
            stats = framing_comparison(dataset, split=splits[0], n=eyes, seed=seed, detector=detector.value)
    wall = time.perf_counter() - start
    settings = {"splits": splits, "shifts": shifts, "limit": limit, "framing_n": framing_n, "seed": seed,
                "detector": detector.value, "model": str(model or config.DEFAULT_MODEL), "tta": tta.value, "labels": label_set(data, data_format.value),
                "wall_seconds": round(wall, 1)}  # fmt: skip
    _write(frame, out, card, settings)
    if json_out:
        return _print_json(frame, stats, settings)
    print_robustness(frame, stats)
    console.print(f"wall time {wall:.0f} s" + (f"; rows in {out}" if out else "") + (f"; card {card}" if card else ""))


def _checked_options(split, shift, out: Path | None, card: Path | None) -> tuple[list[str], list[str]]:
    """The splits and shifts asked for; a one-line error (exit code 2) for a bad option, before any work."""
    from fer_features.benchmark.shifts import SPLITS, RobustnessError, parse_shifts

    splits = [s.strip() for item in (split or list(SPLITS)) for s in item.split(",") if s.strip()]
    bad = [s for s in splits if s not in SPLITS]
    if bad or not splits:
        fail(f"--split {bad[0] if bad else ''}: expected {' or '.join(SPLITS)}")
    try:
        shifts = parse_shifts(shift)
    except RobustnessError as exc:
        fail(f"--shift: {exc}")
    if out is not None and out.suffix.lower() not in (".csv", ".json"):
        fail(f"--out {out}: write a .csv or .json file")
    if card is not None and not card.is_file():
        fail(f"--card {card}: no such model card")
    check_outputs((out, False, "--out"), (card, False, "--card"))
    return splits, shifts


def _print_json(frame, stats, settings: dict) -> None:
    """The rows, the summary and (with --eyes) the framing statistics, as JSON on stdout."""
    from fer_features.benchmark.robustness import summarize

    payload = {"settings": settings, "rows": frame.to_dict(orient="records"),
               "summary": summarize(frame).to_dict(orient="records")}  # fmt: skip
    if stats is not None:
        payload["framing"] = stats.to_dict(orient="records")
    typer.echo(json.dumps(payload, indent=2, default=str))


def _write(frame, out: Path | None, card: Path | None, settings: dict) -> None:
    from fer_features.benchmark.robustness import add_to_card, write_frame
    from fer_features.benchmark.shifts import RobustnessError
    from fer_features.persist.outputs import OutputError

    try:
        if out is not None:
            write_frame(frame, out)
        if card is not None:
            add_to_card(card, frame, labels=settings["labels"], command=command_line(), settings=settings)
    except (RobustnessError, OutputError) as exc:
        fail(str(exc))


_SHORT = {"left_eye_x": "L eye x", "left_eye_y": "L eye y", "right_eye_x": "R eye x", "right_eye_y": "R eye y",
          "eye_distance": "eye dist", "box_width": "box w", "box_height": "box h", "eye_to_mouth": "eye-mouth",
          "jaw_width": "jaw w", "eye_distance_iqr": "eye dist IQR"}  # fmt: skip


def print_robustness(frame, stats=None) -> None:
    """The rows as rich tables: per split, each shift and severity with the shift's mean and the overall mean in bold."""
    from rich.table import Table

    from fer_features.benchmark.robustness import summarize

    summary = summarize(frame)
    for split, part in frame.groupby("split", sort=False):
        means = summary[summary["split"] == split].set_index("shift")
        table = Table(title=f"fer robustness: {split}")
        for col, justify in (("shift", "left"), ("severity", "right"), ("level", "left"), ("n", "right"), ("found", "right"),
                             ("accuracy", "right"), ("balanced acc.", "right")):  # fmt: skip
            table.add_column(col, justify=justify)
        for name, rows in part.groupby("shift", sort=False):
            for _, r in rows.iterrows():
                table.add_row(name, str(r["severity"]), r["level"], f"{r['n']:,}", f"{r['found']:.1%}",
                              f"{r['accuracy']:.4f}", f"{r['balanced_accuracy']:.4f}")  # fmt: skip
            if name != "clean":
                m = means.loc[name]
                table.add_row(name, "mean", "", "", "", f"{m['accuracy']:.4f}", f"{m['balanced_accuracy']:.4f}", style="bold")
        if "mean" in means.index:
            m = means.loc["mean"]
            table.add_row("all shifts", "mean", "", "", "", f"{m['accuracy']:.4f}", f"{m['balanced_accuracy']:.4f}", style="bold reverse")
        wide_console(110).print(table)
    if stats is not None:
        table = Table(title="framing: eye positions and face size, pixels of the 48x48 crop (medians)")
        for col in stats.columns:
            table.add_column(_SHORT.get(col, col), justify="left" if col == "set" else "right")
        for _, r in stats.iterrows():
            table.add_row(*(str(v) if not isinstance(v, float) else f"{v:.1f}" for v in r.tolist()))
        wide_console(160).print(table)
