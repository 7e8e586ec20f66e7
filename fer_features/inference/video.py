"""Emotion of the faces in a video file or a camera stream, frame by frame (OpenCV for reading and
writing video, :func:`fer_features.inference.photos.predict_photos` for the faces).

Frames are analysed in small batches: the faces of ``batch_size`` frames go through the model in
one ``predict_proba`` call. With ``every=k`` only frames ``0, k, 2k, …`` are analysed; an
annotated video still gets every frame, each drawn with the latest analysed faces.
"""

from __future__ import annotations

import csv
import os
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fer_features.config import DEFAULT_DETECTOR, VIDEO_SUFFIXES
from fer_features.inference.photos import FacePrediction, annotate, expand_paths, predict_photos

#: Frame rate assumed when a file does not declare one, in frames per second.
DEFAULT_FPS = 25.0


class VideoError(ValueError):
    """A video or camera cannot be opened or written; the message says which and why."""


def is_video(path: str | os.PathLike) -> bool:
    """True for a file name ending in one of :data:`VIDEO_SUFFIXES`."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


@dataclass
class Inputs:
    """What a list of paths given to ``fer predict`` is: one video, or photos (see :func:`sort_inputs`)."""

    video: Path | None = None
    photos: list[Path] = field(default_factory=list)
    missing: list[Path] = field(default_factory=list)


def sort_inputs(paths: list[str | os.PathLike]) -> Inputs:
    """Sort paths into one video file, or photos with folders expanded to their image files.

    Parameters
    ----------
    paths : list of path-like
        Photos, folders of them, or a single video file (:func:`is_video`: by its name).

    Returns
    -------
    Inputs
        ``video``: the one path, when it is the only one and a video's name (it need not exist:
        opening it says so); else ``photos``, the files and the image files of the folders among
        the paths that exist (:func:`~fer_features.inference.photos.expand_paths`), and
        ``missing``, those that do not.
    """
    paths = [Path(p) for p in paths]
    if len(paths) == 1 and is_video(paths[0]):
        return Inputs(video=paths[0])
    missing = [p for p in paths if not p.exists()]
    return Inputs(photos=expand_paths([p for p in paths if p.exists()]), missing=missing)


def open_capture(source: str | os.PathLike | int):
    """Open a video file or a camera with OpenCV.

    Parameters
    ----------
    source : path-like or int
        A video file, or a camera index (``0`` is the first camera).

    Returns
    -------
    cv2.VideoCapture
        Opened; release it when done.

    Raises
    ------
    FileNotFoundError
        If a file is given that does not exist.
    VideoError
        If OpenCV cannot open it (not a video, a codec it lacks, no such camera).
    """
    import cv2

    if isinstance(source, int):
        cap = cv2.VideoCapture(source)
        if not cap.isOpened():
            cap.release()
            raise VideoError(
                f"no camera at device {source}: check the camera is connected and free, or try another --device"
            )
        return cap
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    cap = cv2.VideoCapture(str(path))
    ok = cap.isOpened() and cap.read()[0]  # an unreadable file may "open" and yield nothing
    cap.release()
    if not ok:
        raise VideoError(f"{path}: not a video OpenCV can read")
    return cv2.VideoCapture(str(path))  # from the first frame again


def capture_info(cap) -> dict:
    """``fps`` (:data:`DEFAULT_FPS` when undeclared), ``frames`` (0 when unknown), ``width``, ``height``."""
    import cv2

    fps = cap.get(cv2.CAP_PROP_FPS)
    frames = cap.get(cv2.CAP_PROP_FRAME_COUNT)
    return {
        "fps": float(fps) if fps and np.isfinite(fps) and fps > 0 else DEFAULT_FPS,
        "frames": int(frames) if frames and np.isfinite(frames) and frames > 0 else 0,
        "width": int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
        "height": int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
    }


def iter_predictions(
    model,
    cap,
    *,
    every: int = 1,
    batch_size: int = 8,
    detector: str = DEFAULT_DETECTOR,
    upsample: int | None = None,
    min_score: float | None = None,
) -> Iterator[tuple[int, np.ndarray, list[FacePrediction] | None]]:
    """Read frames and classify the faces of every ``every``-th one, in batches.

    Parameters
    ----------
    model : fitted pipeline
        Takes ``(n, 48, 48)`` uint8 crops; has ``predict_proba`` and ``classes_``.
    cap : cv2.VideoCapture
        See :func:`open_capture`.
    every : int, default=1
        Analyse frames ``0, every, 2 * every, …``.
    batch_size : int, default=8
        Analysed frames whose faces share one model call (``1`` for a live camera).
    detector, upsample, min_score
        See :func:`fer_features.inference.photos.predict_photos`. A frame is never taken
        whole as a face crop, however small (``whole_if_none=False``).

    Yields
    ------
    index : int
        Frame number, from 0.
    frame : ndarray of shape (height, width, 3), dtype uint8
        RGB.
    faces : list of FacePrediction or None
        The frame's faces (possibly none); ``None`` for a frame that was not analysed.
    """
    import cv2

    if every < 1:
        raise ValueError(f"every must be at least 1, got {every}")
    pending: list[tuple[int, np.ndarray, bool]] = []
    index = 0

    def flush():
        analysed = [frame for _, frame, todo in pending if todo]
        # a frame is a scene, never a face crop, however small
        options = dict(detector=detector, upsample=upsample, min_score=min_score, whole_if_none=False)
        results = iter(predict_photos(model, analysed, **options) if analysed else ())
        for i, frame, todo in pending:
            yield i, frame, next(results) if todo else None
        pending.clear()

    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        pending.append((index, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), index % every == 0))
        index += 1
        if sum(todo for _, _, todo in pending) >= batch_size:
            yield from flush()
    yield from flush()


#: Columns of the prediction CSV before the per-class probabilities (``p_<class>``).
CSV_COLUMNS = ("frame", "time_s", "n_faces", "face", "left", "top", "right", "bottom", "label", "detection_score")


def csv_rows(index: int, time_s: float, faces: list[FacePrediction], classes: list[str]) -> list[list]:
    """The CSV rows of one analysed frame: one per face, or one with empty face fields when it has none."""
    if not faces:
        return [[index, round(time_s, 4), 0, "", "", "", "", "", "", ""] + [""] * len(classes)]
    rows = []
    for k, f in enumerate(faces):
        score = "" if f.detection_score is None else f.detection_score
        probabilities = [f.probabilities[c] for c in classes]
        rows.append([index, round(time_s, 4), len(faces), k, *f.box, f.label, score, *probabilities])
    return rows


@dataclass
class VideoSummary:
    """What :func:`predict_video` did.

    Attributes
    ----------
    frames : int
        Frames read.
    analysed : int
        Frames whose faces were classified.
    faces : int
        Faces classified, over all analysed frames.
    seconds : float
        Wall time of reading, predicting and writing.
    fps : float
        Frames read per second of wall time (``frames / seconds``).
    analysed_fps : float
        Analysed frames per second of wall time.
    source : dict
        :func:`capture_info` of the input.
    labels : dict of {str: int}
        Analysed frames by the label of their first face (highest detection score); ``'no face'``
        for frames without one.
    """

    frames: int = 0
    analysed: int = 0
    faces: int = 0
    seconds: float = 0.0
    fps: float = 0.0
    analysed_fps: float = 0.0
    source: dict = field(default_factory=dict)
    labels: dict[str, int] = field(default_factory=dict)


def _writer(path: Path, fps: float, size: tuple[int, int]):
    import cv2

    fourcc = cv2.VideoWriter_fourcc(*("MJPG" if path.suffix.lower() == ".avi" else "mp4v"))
    writer = cv2.VideoWriter(str(path), fourcc, fps, size)
    if not writer.isOpened():
        raise VideoError(f"{path}: OpenCV cannot write this kind of video; use .mp4 or .avi")
    return writer


class VideoStream:
    """The faces of a video as rows, produced while the video is read; CSV and annotated video as it goes.

    Iterating yields one dict per face of each analysed frame (one with the face fields None
    for a frame without a face), in frame order: ``frame``, ``time_s``, ``n_faces``, ``path``,
    ``face``, ``left``, ``top``, ``right``, ``bottom`` (pixels), ``detection_score``,
    ``label``, ``p_<class>`` per class and ``error`` (None): the columns of
    :meth:`fer_features.Recognizer.predict_video`. Nothing is kept: memory stays flat however
    long the video. The CSV rows of each batch of frames are flushed to the CSV's temporary
    file (``.<name>.*.tmp`` beside it) before the batch's rows are yielded; the file takes its
    name when the video ends or the iteration stops (``break``, :meth:`close`, or ``on_frame``
    returning True). An error leaves an earlier file of that name intact.

    Parameters
    ----------
    model : fitted pipeline
        Takes ``(n, 48, 48)`` uint8 crops; has ``predict_proba`` and ``classes_``.
    source : path-like or int
        Video file, or camera index (opened here: errors are raised by the constructor).
    out_csv : path-like, optional
        Per-frame predictions: columns :data:`CSV_COLUMNS` then ``p_<class>`` for each of the
        model's classes; one row per face of each analysed frame, and one row with ``n_faces=0``
        and empty face fields for an analysed frame with no face. Boxes are in pixels of the
        frame; ``time_s = frame / fps``. Written atomically.
    annotate_path : path-like, optional
        The video with boxes and labels drawn (``.mp4``: MPEG-4 Part 2, ``.avi``: Motion JPEG),
        every frame, at the source's frame rate.
    every : int, default=1
        Analyse every ``every``-th frame.
    batch_size : int, default=8
        Frames per model call.
    detector, upsample, min_score
        See :func:`fer_features.inference.photos.predict_photos`.
    on_frame : callable, optional
        Called as ``on_frame(index, frame_rgb, faces)`` after each frame (``faces`` is None for a
        frame not analysed); returning True stops early.
    max_frames : int, optional
        Stop after this many frames.

    Attributes
    ----------
    summary : VideoSummary
        Counts so far; times and rates once the iteration has ended.
    classes : list of str
        The model's classes.

    Raises
    ------
    FileNotFoundError, VideoError
        See :func:`open_capture`; VideoError also, while iterating, when the annotated video
        cannot be written.

    Examples
    --------
    >>> for row in VideoStream(model, "clip.mp4", out_csv="clip.csv"):   # doctest: +SKIP
    ...     print(row["frame"], row["label"])
    """

    def __init__(
        self,
        model,
        source: str | os.PathLike | int,
        *,
        out_csv: str | os.PathLike | None = None,
        annotate_path: str | os.PathLike | None = None,
        every: int = 1,
        batch_size: int = 8,
        detector: str = DEFAULT_DETECTOR,
        upsample: int | None = None,
        min_score: float | None = None,
        on_frame: Callable[[int, np.ndarray, list[FacePrediction] | None], bool | None] | None = None,
        max_frames: int | None = None,
    ):
        if every < 1:
            raise ValueError(f"every must be at least 1, got {every}")
        self._cap = open_capture(source)
        self.source = str(source)
        self.classes = [str(c) for c in model.classes_]
        self.summary = VideoSummary(source=capture_info(self._cap))
        self._frames = _frames(
            model, self._cap, self.summary, out_csv=out_csv, annotate_path=annotate_path, every=every,
            batch_size=batch_size, on_frame=on_frame, max_frames=max_frames,
            options={"detector": detector, "upsample": upsample, "min_score": min_score},
        )  # fmt: skip

    def __iter__(self) -> Iterator[dict]:
        from fer_features.inference.photos import face_rows

        fps = self.summary.source["fps"]
        with closing(self._frames) as frames:
            for index, _, faces in frames:
                if faces is None:
                    continue
                first = {"frame": index, "time_s": round(index / fps, 4), "n_faces": len(faces), "path": self.source}
                for row in face_rows(faces, self.classes):
                    yield {**first, **row, "error": None}

    def run(self) -> VideoSummary:
        """Read the whole video (writing the CSV and annotated video) without keeping rows; the summary."""
        with closing(self._frames) as frames:
            for _ in frames:
                pass
        return self.summary

    def close(self) -> None:
        """Stop reading: the CSV and annotated video keep the frames done so far."""
        self._frames.close()


def _frames(model, cap, summary: VideoSummary, *, out_csv, annotate_path, every, batch_size, on_frame, max_frames, options):
    """The generator behind :class:`VideoStream`: ``(index, frame, faces)`` after each frame is written.

    Closing it (GeneratorExit at a ``yield``) ends the run as a stop: the files are completed.
    """
    from fer_features.persist.outputs import atomic_path

    info, classes = summary.source, [str(c) for c in model.classes_]
    writer = video_tmp = None
    if annotate_path is not None:
        annotate_path = Path(annotate_path)
        annotate_path.parent.mkdir(parents=True, exist_ok=True)
        # OpenCV picks the container by the file ending, so the temporary file keeps it.
        video_tmp = annotate_path.with_name(f".{annotate_path.stem}.partial{annotate_path.suffix}")
    start = time.perf_counter()
    try:
        with atomic_path(out_csv) if out_csv is not None else _null() as csv_tmp:
            fh = open(csv_tmp, "w", newline="") if csv_tmp is not None else None  # noqa: SIM115 (closed below)
            try:
                rows = csv.writer(fh) if fh else None
                if rows:
                    rows.writerow([*CSV_COLUMNS, *(f"p_{c}" for c in classes)])
                shown: list[FacePrediction] = []
                for index, frame, faces in iter_predictions(model, cap, every=every, batch_size=batch_size, **options):
                    summary.frames += 1
                    if faces is not None:
                        shown = faces
                        summary.analysed += 1
                        summary.faces += len(faces)
                        key = faces[0].label if faces else "no face"
                        summary.labels[key] = summary.labels.get(key, 0) + 1
                        if rows:
                            rows.writerows(csv_rows(index, index / info["fps"], faces, classes))
                            if summary.analysed % batch_size == 0:
                                fh.flush()  # a batch's rows are on disk before the next batch is read
                    if video_tmp is not None:
                        if writer is None:
                            writer = _writer(video_tmp, info["fps"], (frame.shape[1], frame.shape[0]))
                        writer.write(_to_bgr(np.asarray(annotate(frame, shown)) if shown else frame))
                    try:
                        yield index, frame, faces
                    except GeneratorExit:
                        break  # the caller stopped: finish the files with the frames done
                    if on_frame is not None and on_frame(index, frame, faces):
                        break
                    if max_frames is not None and summary.frames >= max_frames:
                        break
            finally:
                if fh:
                    fh.close()
        if writer is not None:
            writer.release()
            writer = None
            os.replace(video_tmp, annotate_path)
    finally:
        cap.release()
        if writer is not None:
            writer.release()
        if video_tmp is not None and video_tmp.exists():
            video_tmp.unlink()
        summary.seconds = round(time.perf_counter() - start, 3)
        summary.fps = round(summary.frames / summary.seconds, 2) if summary.seconds else 0.0
        summary.analysed_fps = round(summary.analysed / summary.seconds, 2) if summary.seconds else 0.0


def predict_video(model, source: str | os.PathLike | int, **options) -> VideoSummary:
    """Classify the faces of a video (or camera) frame by frame; write a CSV and an annotated video.

    Parameters
    ----------
    model : fitted pipeline
    source : path-like or int
        Video file, or camera index.
    **options
        ``out_csv``, ``annotate_path``, ``every``, ``batch_size``, ``detector``, ``upsample``,
        ``min_score``, ``on_frame``, ``max_frames``: see :class:`VideoStream`.

    Returns
    -------
    VideoSummary

    Raises
    ------
    FileNotFoundError, VideoError
        See :func:`open_capture`; VideoError also when the annotated video cannot be written.
    """
    return VideoStream(model, source, **options).run()


def _to_bgr(rgb: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(rgb[..., ::-1])


class _null:
    """``with _null() as x`` gives ``x = None`` (no CSV to write)."""

    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def check_display() -> None:
    """Raise VideoError unless OpenCV can open a window here (a GUI build and a display).

    Raises
    ------
    VideoError
        Saying which is missing and what to use instead.
    """
    import sys

    import cv2

    instead = "use `fer serve` and the browser's Webcam tab, or record a clip and run `fer predict clip.mp4`"
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise VideoError(f"no display to show the webcam in ($DISPLAY is not set); {instead}")
    try:
        cv2.namedWindow("fer", cv2.WINDOW_NORMAL)
        cv2.destroyWindow("fer")
    except cv2.error:
        raise VideoError(
            "this OpenCV has no GUI support (opencv-python-headless); "
            f"`pip install opencv-python` for a window, or {instead}"
        ) from None


def run_webcam(model, device: int = 0, *, out_csv=None, every: int = 1, **predict_options) -> VideoSummary:
    """Show the camera with each face's box and emotion in an OpenCV window until q or Esc.

    Thin over :func:`predict_video` (one frame per model call).

    Parameters
    ----------
    model : fitted pipeline
    device : int, default=0
        OpenCV camera index.
    out_csv : path-like, optional
        Also write the per-frame CSV (see :func:`predict_video`).
    every : int, default=1
    **predict_options
        ``detector``, ``upsample``, ``min_score``.

    Raises
    ------
    VideoError
        No display or GUI (checked first), or no camera at ``device``.
    """
    import cv2

    check_display()
    shown: list[FacePrediction] = []

    def show(index, frame, faces):
        nonlocal shown
        if faces is not None:
            shown = faces
        cv2.imshow("fer (q to quit)", _to_bgr(np.asarray(annotate(frame, shown)) if shown else frame))
        key = cv2.waitKey(1) & 0xFF
        return key in (ord("q"), 27)

    try:
        return predict_video(
            model, device, out_csv=out_csv, every=every, batch_size=1, on_frame=show, **predict_options
        )
    finally:
        cv2.destroyAllWindows()
