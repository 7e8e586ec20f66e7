"""``fer predict``: photos, a video or the webcam → :class:`fer_features.Recognizer` → a table, JSON or CSV."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from fer_features import config
from fer_features.cli.common import (
    OUTPUT,
    Detector,
    DetectorOpt,
    MaxPixelsOpt,
    MinScoreOpt,
    ModelOpt,
    TrustPickleOpt,
    UpsampleOpt,
    app,
    check_outputs,
    fail,
    open_recognizer,
)  # fmt: skip
from fer_features.cli.consoles import console, err_console, wide_console

PathsArg = Annotated[list[Path] | None, typer.Argument(help="Photos, 48x48 face crops, folders of them, or one video file.")]
AnnotateOpt = Annotated[
    Path | None,
    typer.Option(help="Write the photo with boxes and labels here (a folder for several photos; an .mp4/.avi for a video).",
                 rich_help_panel=OUTPUT),
]  # fmt: skip
CsvOpt = Annotated[Path | None, typer.Option(help="Video or webcam: write per-frame faces, labels and probabilities to this CSV.", rich_help_panel=OUTPUT)]
EveryOpt = Annotated[int, typer.Option(min=1, help="Video or webcam: analyse every k-th frame.")]
WebcamOpt = Annotated[bool, typer.Option("--webcam", help="Classify the camera's frames live in an OpenCV window (needs a display).")]
CameraOpt = Annotated[int, typer.Option(help="Webcam: OpenCV camera index.")]


@app.command()
def predict(
    paths: PathsArg = None,
    model: ModelOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print results as JSON.", rich_help_panel=OUTPUT)] = False,
    annotate: AnnotateOpt = None,
    detector: DetectorOpt = Detector(config.DEFAULT_DETECTOR),
    upsample: UpsampleOpt = None,
    min_score: MinScoreOpt = None,
    out: CsvOpt = None,
    every: EveryOpt = 1,
    webcam: WebcamOpt = False,
    device: CameraOpt = 0,
    max_pixels: MaxPixelsOpt = None,
    trust_pickle: TrustPickleOpt = False,
) -> None:
    """Find every face in each photo (or each frame of a video, or the webcam) and say its emotion.

    A 48x48 image is taken as an aligned face crop, and so is a small, nearly square photo in
    which no face is found (32 to 160 px). A photo with no face is reported and the batch goes
    on; an unreadable file is reported and makes the exit code 2 once the batch is done. One
    video file (.mp4, .avi, .mov, .mkv, .webm, …) is read frame by frame: [bold]--out[/] CSV,
    [bold]--annotate[/] video, [bold]--every[/] k.
    """
    from fer_features.inference.video import sort_inputs

    options = dict(detector=detector.value, upsample=upsample, min_score=min_score, trust_pickle=trust_pickle, max_pixels=max_pixels)
    inputs = sort_inputs([] if webcam else paths or [])
    if webcam or inputs.video is not None:
        return predict_video(inputs.video, model, out, annotate, every, device, json_out, options)
    if not paths:
        fail("give photos, folders of them or one video file, or --webcam")
    if out is not None:
        fail("--out writes the CSV of a video or the webcam; for photos use --json")
    if inputs.missing:
        fail(f"{inputs.missing[0]}: no such file or folder")
    files = inputs.photos
    if not files:
        fail(f"no image files in {', '.join(map(str, paths))}")
    check_outputs((annotate, len(files) > 1, "--annotate"))
    recognizer = open_recognizer(model, **options)
    with console.status(f"finding faces in {len(files)} image(s)"):
        results = recognizer.predict_results(files)
    if annotate is not None:
        write_annotated(recognizer, results, annotate)
    if json_out:
        typer.echo(json.dumps([r.to_dict() for r in results], indent=2))
    else:
        print_predictions(results, recognizer.classes)
    errors = [r for r in results if r.error]
    for r in errors:
        err_console.print(f"[bold red]error:[/] {r.error}", highlight=False, soft_wrap=True)
    if errors:
        raise typer.Exit(code=2)


def write_annotated(recognizer, results, annotate: Path) -> None:
    """Each readable photo with its boxes and labels, as ``annotate`` (one photo) or in that folder."""
    from fer_features.persist.outputs import atomic_path

    for r in results:
        if r.error is None:
            target = annotate if len(results) == 1 else annotate / f"{Path(r.path).stem}.annotated.png"
            with atomic_path(target) as tmp:
                recognizer.annotate(r.path, r.faces).save(tmp, format="PNG")


def print_predictions(results, classes: list[str]) -> None:
    """One table row per face (or per photo without one)."""
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD)
    for col in ("image", "face", "box (l, t, r, b)", "emotion", *classes):
        table.add_column(col, justify="left" if col in ("image", "emotion", "box (l, t, r, b)") else "right")
    for r in results:
        name = Path(r.path).name
        if r.error:
            table.add_row(name, "", "", "[red]unreadable[/]", *[""] * len(classes))
        elif not r.faces:
            table.add_row(name, "0", "", "[yellow]no face found[/]", *[""] * len(classes))
        for i, f in enumerate(r.faces, 1):
            probs = [f"{f.probabilities[c]:.2f}" for c in classes]
            table.add_row(name, str(i), ", ".join(map(str, f.box)), f"[bold]{f.label}[/]", *probs)
    wide_console(140).print(table)  # a pipe or file gets the whole table, not one wrapped at 80 columns


def predict_video(source: Path | None, model, out, annotate, every: int, device: int, json_out: bool, options: dict) -> None:
    """``fer predict VIDEO`` (``source``) or ``fer predict --webcam`` (``source=None``): CSV, annotated video, fps."""
    from fer_features.config import VIDEO_SUFFIXES
    from fer_features.inference.video import VideoError, is_video

    if source is not None and not source.is_file():
        fail(f"{source}: no such file")
    if annotate is not None and source is None:
        fail("--annotate is for photos and videos, not --webcam")
    if annotate is not None and not is_video(annotate):
        fail(f"--annotate {annotate}: give a video file name ({', '.join(VIDEO_SUFFIXES[:4])}, …) for a video")
    check_outputs((out, False, "--out"), (annotate, False, "--annotate"))
    recognizer = open_recognizer(model, **options)
    try:
        if source is None:
            err_console.print(f"webcam {device}: q or Esc in the window to stop")
            summary = recognizer.webcam(device, out_csv=out, every=every)
        else:
            summary = _video_with_progress(recognizer, source, out, annotate, every)
    except (VideoError, FileNotFoundError) as exc:
        fail(str(exc))
    result = {
        "source": str(source) if source is not None else f"webcam {device}", "frames": summary.frames,
        "analysed": summary.analysed, "faces": summary.faces, "seconds": summary.seconds,
        "frames_per_second": summary.fps, "analysed_per_second": summary.analysed_fps, "labels": summary.labels,
        "video": summary.source, "csv": str(out) if out else None, "annotated": str(annotate) if annotate else None,
    }  # fmt: skip
    if json_out:
        typer.echo(json.dumps(result, indent=2))
        return
    console.print(
        f"{result['source']}: {summary.frames} frames ({summary.analysed} analysed, {summary.faces} faces) in "
        f"{summary.seconds:.1f} s: [bold]{summary.fps:.1f} frames/s[/]"
    )
    if summary.labels:
        counts = sorted(summary.labels.items(), key=lambda kv: -kv[1])
        console.print("first face per analysed frame: " + ", ".join(f"{k} {v}" for k, v in counts))
    for what, path in (("predictions", out), ("annotated video", annotate)):
        if path:
            console.print(f"{what}: {path}")


def _video_with_progress(recognizer, source: Path, out, annotate, every: int):
    """:meth:`Recognizer.predict_video` (streamed) under a bar with the frames per second; its summary."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from fer_features.inference.video import capture_info, open_capture

    cap = open_capture(source)
    total = capture_info(cap)["frames"] or None
    cap.release()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
               TimeElapsedColumn())  # fmt: skip
    with Progress(*columns, console=err_console) as progress:
        task = progress.add_task(f"frames of {source.name}", total=total, rate="")
        start = time.perf_counter()

        def tick(index, frame, faces):
            rate = (index + 1) / (time.perf_counter() - start)
            progress.update(task, completed=index + 1, rate=f"{rate:.1f} frames/s")

        rows = recognizer.predict_video(source, every=every, out_csv=out, annotate=annotate, on_frame=tick, stream=True)
        return rows.run()  # rows go to the CSV as they come; none are kept
