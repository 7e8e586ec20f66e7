"""The façade: faces in photos, arrays or videos → emotions, as a pandas DataFrame.

>>> from fer_features import Recognizer                     # doctest: +SKIP
>>> Recognizer().predict("photo.jpg")                         # doctest: +SKIP
   image       path  face  left  top  right  bottom  detection_score  label  p_angry  …  error
0      0  photo.jpg     0   175   76    265     166             1.16  happy     0.12  …   None

``fer predict``, ``fer serve`` and the video code all go through :class:`Recognizer`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator

import numpy as np

from fer_features.config import DEFAULT_DETECTOR, IMAGE_SIZE
from fer_features.faces.detectors import get_detector
from fer_features.inference.photos import FacePrediction, PhotoResult

#: Images (photos, or crops) read and classified per model call by default.
DEFAULT_BATCH_SIZE = 64


class Recognizer:
    """Find every face in images, align it like a FER2013 crop, and classify its emotion.

    Parameters
    ----------
    model : str, path-like or fitted estimator, optional
        The name of a model shipped in the package (``'default'``: a compact CNN in int8;
        ``'accurate'``: three CNNs in int8, averaged; ``fer models`` lists them), a model file (``.skops`` from ``fer train``; a ``.joblib`` pickle only with
        ``trusted``; a CNN checkpoint ``.pt``), an already loaded pipeline, or None for the
        default: ``$FER_MODEL``, else the bundled ``'default'``.
    detector : {'yuface', 'hog', 'mmod'} or a registered name, default='yuface'
        The face detector (:mod:`fer_features.faces.detectors`): libfacedetection's YuNet CNN (fast,
        aligns on its own eye points), dlib's HOG detector, or dlib's MMOD CNN (robust, slow).
    device : {'auto', 'cpu', 'cuda', 'mps'}, default='auto'
        Where a model's torch steps (the CNN) run; ignored by models without any.
    batch_size : int, default=64
        Images per model call: the faces of that many photos (or that many crops) are
        classified together.
    upsample : int, optional
        Doublings of the detection resolution (finds smaller faces, slower); default the
        detector's (0 for ``yuface``, 1 for dlib's).
    min_score : float, optional
        Drop detections scoring lower (default the detector's: 0.5 for ``yuface``, 0.3 for
        ``hog``, 0 for ``mmod``).
    progress : bool, optional
        Draw a progress bar on stderr; default: for inputs of more than one batch, on a terminal.
    trusted : bool, default=False
        Load a pickle-based (joblib) model file. Unpickling runs any code its author put in it:
        only for files you made yourself (see :func:`fer_features.persist.files.load_model`).
    max_pixels : int, optional
        Largest photo read from a file, in pixels (``width * height``); default
        :func:`fer_features.faces.images.default_max_pixels` (25 MP). A larger file gets a result with
        its ``error``, and the batch goes on.

    Attributes
    ----------
    model : estimator
        The fitted pipeline: ``(n, 48, 48)`` uint8 crops → ``predict_proba``.
    model_path : Path or None
        Where it was loaded from (None for a pipeline given as it is).
    model_format : {'skops', 'pickle', 'checkpoint'} or None
        How it was read (:func:`fer_features.persist.files.open_model`).
    bundled_model : str or None
        The bundled model's name (``'default'``, ``'accurate'``) when the file is one of the package's.
    classes : list of str
        The model's classes, in the order of its probability columns.

    Raises
    ------
    fer_features.persist.files.ModelError
        If the model file is missing, unreadable or not a fer-features pipeline;
        :class:`~fer_features.persist.files.UnsafeModelError` for a pickle without ``trusted`` or a
        skops file with types outside the project's.
    ValueError
        For an unknown detector or a bad batch size.
    ImportError
        For dlib's detectors (``'hog'``, ``'mmod'``) without dlib: ``pip install 'fer-features[train]'``.

    Examples
    --------
    >>> rec = Recognizer("accurate")                            # doctest: +SKIP
    >>> rec = Recognizer("models/my.skops")                     # doctest: +SKIP
    >>> rec.predict(["a.jpg", "folder_of_photos/"])             # doctest: +SKIP
    >>> rec.predict(crops)            # ndarray of shape (n, 48, 48): one row per crop   # doctest: +SKIP
    >>> rec.predict_video("clip.mp4", every=3)                  # doctest: +SKIP
    """

    def __init__(
        self,
        model=None,
        *,
        detector: str = DEFAULT_DETECTOR,
        device: str = "auto",
        batch_size: int = DEFAULT_BATCH_SIZE,
        upsample: int | None = None,
        min_score: float | None = None,
        progress: bool | None = None,
        trusted: bool = False,
        max_pixels: int | None = None,
    ):
        from fer_features.persist.files import open_model
        from fer_features.torch_utils import move_model

        get_detector(detector)  # built once: an unknown name or a missing dlib (the train extra) fails here, not at the first photo
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size!r}")
        if model is None or isinstance(model, (str, os.PathLike)):
            loaded = open_model(model, trusted=trusted)  # the name resolved once, there
            self.model, self.model_path, self.model_format, self.bundled_model = loaded.model, loaded.path, loaded.format, loaded.bundled
        else:
            self.model, self.model_path, self.model_format, self.bundled_model = model, None, None, None
        move_model(self.model, device)
        self.detector, self.device, self.batch_size = detector, device, int(batch_size)
        self.upsample, self.min_score, self.progress = upsample, min_score, progress
        self.max_pixels = max_pixels
        self.classes = [str(c) for c in self.model.classes_]

    def __repr__(self) -> str:
        model = str(self.model_path) if self.model_path else type(self.model).__name__
        return f"Recognizer(model={model!r}, detector={self.detector!r}, classes={self.classes})"

    # ----------------------------------------------------------------------- photos and arrays

    def predict(self, x, *, upsample: int | None = None, min_score: float | None = None, progress: bool | None = None):
        """Every face of the input, one row each, as a DataFrame.

        Parameters
        ----------
        x : path-like, list of path-like or ndarray
            A photo; a folder (its images, recursively, sorted); a list of photos, folders or
            arrays; an image array of shape ``(height, width)`` or ``(height, width, 3 or 4)``;
            a batch of aligned 48x48 grey crops, ``(n, 48, 48)`` (each classified directly, no
            detection); or several images ``(n, height, width, 3)``.
        upsample, min_score : optional
            This call's detection options, in place of the recognizer's.
        progress : bool, optional
            This call's progress bar setting.

        Returns
        -------
        pandas.DataFrame
            One row per face: ``image, path, face, left, top, right, bottom, detection_score,
            label``, one ``p_<emotion>`` per class, and ``error`` (see
            :func:`fer_features.inference.photos.results_frame`). A photo with no face gives one row with
            ``face`` empty; a file that cannot be read gives one row with its ``error``.
        """
        from fer_features.inference.photos import results_frame

        results = self.predict_results(x, upsample=upsample, min_score=min_score, progress=progress)
        return results_frame(results, self.classes)

    def predict_results(
        self, x, *, upsample: int | None = None, min_score: float | None = None, progress: bool | None = None
    ) -> list[PhotoResult]:
        """Like :meth:`predict`, as one :class:`~fer_features.inference.photos.PhotoResult` per image.

        Returns
        -------
        list of PhotoResult
            In input order (a folder's files sorted); an unreadable file has its ``error`` set
            and no faces. Arrays have ``path=None``.
        """
        from fer_features.faces.alignment import faces_in
        from fer_features.faces.images import ImageError
        from fer_features.inference.photos import classify_faces

        items = list(_items(x))
        options = self._options(upsample, min_score)
        results: list[PhotoResult] = []
        with _bar(self._show_progress(progress, len(items)), len(items), "images") as advance:
            for start in range(0, len(items), self.batch_size):
                chunk, found, readable = items[start : start + self.batch_size], [], []
                for path, array in chunk:
                    try:  # read and find its faces; a 48x48 crop is its own face
                        image, faces = faces_in(path if array is None else array, max_pixels=self.max_pixels, **options)
                    except ImageError as exc:
                        results.append(PhotoResult(path=path, error=str(exc)))
                        continue
                    results.append(PhotoResult(path=path, width=image.shape[1], height=image.shape[0]))
                    found.append(faces)
                    readable.append(len(results) - 1)
                for index, faces in zip(readable, classify_faces(self.model, found)):
                    results[index].faces = faces
                advance(len(chunk))
        return results

    def annotate(self, image, faces: list[FacePrediction]):
        """The image (a path or an array) with each face's box and ``label probability`` drawn.

        Returns
        -------
        PIL.Image.Image
            RGB, the size of the image.
        """
        from fer_features.faces.images import decode_image, to_rgb
        from fer_features.inference.photos import annotate

        return annotate(decode_image(image, max_pixels=self.max_pixels) if isinstance(image, (str, os.PathLike)) else to_rgb(image), faces)

    # ----------------------------------------------------------------------- video

    def predict_video(
        self,
        source,
        *,
        every: int = 1,
        out_csv=None,
        annotate=None,
        max_frames: int | None = None,
        on_frame: Callable | None = None,
        progress: bool | None = None,
        stream: bool = False,
    ):
        """The faces of a video file, frame by frame, as a DataFrame or as rows while they come.

        Parameters
        ----------
        source : path-like or int
            A video file OpenCV reads, or a camera index.
        every : int, default=1
            Analyse frames ``0, every, 2 * every, …`` (the faces of :attr:`batch_size` analysed
            frames, at most 8, share one model call).
        out_csv : path-like, optional
            Also write the per-frame CSV (:class:`fer_features.inference.video.VideoStream`): rows are
            flushed to its temporary file batch by batch, and it takes its name at the end.
        annotate : path-like, optional
            Also write the video with boxes and labels (``.mp4`` or ``.avi``).
        max_frames : int, optional
            Stop after this many frames.
        on_frame : callable, optional
            ``on_frame(index, frame_rgb, faces)`` after each frame; returning True stops.
        progress : bool, optional
            A progress bar over the frames (not with ``stream``).
        stream : bool, default=False
            Return an iterator of rows (dicts with the DataFrame's columns) that reads the video
            as it is iterated and keeps nothing: memory stays flat on long videos. Its
            ``summary`` is complete once the iteration ends.

        Returns
        -------
        pandas.DataFrame or fer_features.inference.video.VideoStream
            For each analysed frame, the rows of :meth:`predict` (one per face, or one with the
            face empty), led by ``frame``, ``time_s`` (``frame / fps``) and ``n_faces``. Its
            ``attrs["summary"]`` is the :class:`~fer_features.inference.video.VideoSummary`. With
            ``stream=True``, the same rows one at a time (a dict each).

        Raises
        ------
        FileNotFoundError, fer_features.inference.video.VideoError
            If the video cannot be opened or the annotated video cannot be written.

        Examples
        --------
        >>> for row in Recognizer().predict_video("clip.mp4", stream=True, out_csv="clip.csv"):  # doctest: +SKIP
        ...     print(row["frame"], row["label"])
        """
        from fer_features.inference.photos import FRAME_COLUMNS, typed_frame
        from fer_features.inference.video import VideoStream

        options = dict(out_csv=out_csv, annotate_path=annotate, every=every, batch_size=min(self.batch_size, 8),
                       max_frames=max_frames, **self._options(None, None))  # fmt: skip
        if stream:
            return VideoStream(self.model, source, on_frame=on_frame, **options)
        show = bool(progress or (progress is None and self.progress))
        advance = [lambda n: None]

        def tick(index, frame, faces):
            advance[0](1)
            return on_frame(index, frame, faces) if on_frame is not None else None

        rows = VideoStream(self.model, source, on_frame=tick, **options)
        with _bar(show, rows.summary.source["frames"] or None, "frames") as step:
            advance[0] = step
            records = list(rows)
        columns = ["frame", "time_s", "n_faces", *(c for c in FRAME_COLUMNS if c != "image"), *(f"p_{c}" for c in self.classes), "error"]
        frame = typed_frame(records, columns, self.classes)
        frame.attrs["summary"] = rows.summary
        return frame

    def webcam(self, device: int = 0, *, out_csv=None, every: int = 1):
        """Show the camera with boxes and labels in an OpenCV window until q or Esc.

        Returns
        -------
        fer_features.inference.video.VideoSummary

        Raises
        ------
        fer_features.inference.video.VideoError
            No display or GUI, or no camera at ``device``.
        """
        from fer_features.inference.video import run_webcam

        return run_webcam(self.model, device, out_csv=out_csv, every=every, **self._options(None, None))

    def iter_video(self, source, *, every: int = 1) -> Iterator[tuple[int, np.ndarray, list[FacePrediction] | None]]:
        """Frames of a video with their faces, as they are read: ``(index, frame_rgb, faces)``.

        ``faces`` is None for a frame that was not analysed (see ``every``).
        """
        from fer_features.inference.video import iter_predictions, open_capture

        cap = open_capture(source)
        try:
            yield from iter_predictions(self.model, cap, every=every, batch_size=min(self.batch_size, 8), **self._options(None, None))
        finally:
            cap.release()

    # ----------------------------------------------------------------------- helpers

    def _options(self, upsample, min_score) -> dict:
        return {
            "detector": self.detector,
            "upsample": self.upsample if upsample is None else upsample,
            "min_score": self.min_score if min_score is None else min_score,
        }

    def _show_progress(self, progress: bool | None, n: int) -> bool:
        setting = self.progress if progress is None else progress
        if setting is None:
            import sys

            return n > self.batch_size and sys.stderr.isatty()
        return bool(setting)


def _items(x) -> Iterator[tuple[str | None, np.ndarray | None]]:
    """The input as ``(path, None)`` for files and ``(None, array)`` for in-memory images."""
    from fer_features.inference.photos import expand_paths

    if isinstance(x, (str, os.PathLike)):
        yield from ((str(p), None) for p in expand_paths([x]))
        return
    if isinstance(x, np.ndarray) or hasattr(x, "__array_interface__"):
        arr = np.asarray(x)
        if arr.ndim == 3 and arr.shape[1:] == (IMAGE_SIZE, IMAGE_SIZE):  # a batch of crops
            yield from ((None, crop) for crop in arr)
        elif arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (1, 3, 4)):
            yield None, arr
        elif arr.ndim == 4 and arr.shape[3] in (1, 3, 4):
            yield from ((None, image) for image in arr)
        else:
            raise ValueError(
                f"cannot read an image array of shape {arr.shape}: give (height, width[, 3]), a batch of "
                f"{IMAGE_SIZE}x{IMAGE_SIZE} crops (n, {IMAGE_SIZE}, {IMAGE_SIZE}) or images (n, height, width, 3)"
            )
        return
    if isinstance(x, Iterable):
        for item in x:
            yield from _items(item)
        return
    raise TypeError(f"cannot predict on a {type(x).__name__}: give paths, folders or image arrays")


class _bar:
    """``with _bar(show, total, unit) as advance``: a rich progress bar on stderr, or nothing."""

    def __init__(self, show: bool, total: int | None, unit: str):
        self.show, self.total, self.unit, self.progress = show, total, unit, None

    def __enter__(self):
        if not self.show:
            return lambda n: None
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(
            TextColumn(f"{self.unit}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=Console(stderr=True), transient=True,
        )  # fmt: skip
        task = self.progress.add_task(self.unit, total=self.total)
        self.progress.start()
        return lambda n: self.progress.advance(task, n)

    def __exit__(self, *exc):
        if self.progress is not None:
            self.progress.stop()
        return False
