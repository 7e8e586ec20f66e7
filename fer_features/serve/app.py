"""The FastAPI app behind ``fer serve``: a JSON prediction API and the static demo page.

Routes
------
``POST /predict``
    An image as multipart field ``file`` or as the raw request body → its faces, each with box,
    label and probabilities, and timings. Faces of one image are classified in one batched model
    call (:func:`fer_features.inference.photos.predict_photos`).
``POST /annotate``
    The same input → the image as PNG with boxes and labels drawn.
``GET /health``
    Model, classes and limits; for load balancers and the demo page.
``GET /``
    The demo page (``static/index.html``): Upload, Webcam and FaceMatch tabs.
``GET /docs``, ``GET /openapi.json``
    FastAPI's OpenAPI documentation.

Bad uploads get a 4xx status and a JSON body ``{"error": code, "detail": message}``: an empty
body (400), a body over the size limit (413), more pixels than the limit (413), data that is
not an image (415), a truncated or corrupt image (422). The server goes on serving.
"""

import io
import json
import os
import time
from contextlib import asynccontextmanager
from pathlib import Path

import numpy as np

from fer_features.config import DEFAULT_DETECTOR

# Largest image accepted, in pixels (width x height): 25 megapixels, the CLI's default too.
from fer_features.faces.images import DEFAULT_MAX_PIXELS
from fer_features.serve.batching import DynamicBatcher

#: Largest upload accepted, in bytes (10 MiB).
DEFAULT_MAX_BYTES = 10 * 2**20


#: Bytes a multipart envelope may add to the file it carries (boundaries and part headers).
MULTIPART_OVERHEAD = 16 * 1024

#: The demo page and its script and style sheet (package data).
STATIC_DIR = Path(__file__).parent / "static"

#: Content types advertised for the raw-body form of ``POST /predict`` in the OpenAPI schema.
_IMAGE_BODY = {"schema": {"type": "string", "format": "binary"}}
_REQUEST_BODY = {
    "requestBody": {
        "required": True,
        "description": "The image: multipart field `file`, or the raw bytes as the body (any image type Pillow reads).",
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            },
            "image/jpeg": _IMAGE_BODY,
            "image/png": _IMAGE_BODY,
            "application/octet-stream": _IMAGE_BODY,
        },
    }
}
_ERRORS = {
    code: {"description": text, "content": {"application/json": {"example": {"error": name, "detail": "…"}}}}
    for code, name, text in (
        (400, "empty", "Empty upload, or a multipart form without a file."),
        (413, "too_large", "Upload over the byte limit, or image over the pixel limit."),
        (415, "not_an_image", "The data is not an image Pillow can read."),
        (422, "corrupt_image", "Truncated or corrupt image data, or a bad query parameter."),
    )
}


class UploadError(ValueError):
    """An upload the server refuses; carries the HTTP status and a short error code.

    Parameters
    ----------
    status : int
        HTTP status: 400, 413, 415 or 422.
    code : str
        Machine-readable reason, e.g. ``'not_an_image'``.
    message : str
        What is wrong and how to fix it.
    """

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code


def decode_upload(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode uploaded bytes to an upright 8-bit RGB image, refusing what is not a sound image.

    The pixel count is checked from the header, before the pixels are decoded, so a small file
    that claims a huge image costs nothing.

    Parameters
    ----------
    data : bytes
        The file's content.
    max_pixels : int, default=25_000_000
        Largest ``width * height`` accepted.

    Returns
    -------
    image : ndarray of shape (height, width, 3), dtype uint8
        EXIF orientation applied; grey, palette, RGBA and 16-bit images converted as
        :func:`fer_features.faces.images.to_rgb` does.

    Raises
    ------
    UploadError
        400 ``empty`` for no bytes; 415 ``not_an_image`` when Pillow does not recognise the data;
        413 ``too_many_pixels`` over ``max_pixels``; 422 ``corrupt_image`` for truncated or
        corrupt data.
    """
    from fer_features.faces import images

    try:
        return images.decode_image(data, max_pixels=max_pixels, name="upload")
    except images.EmptyImageError:
        message = "empty upload: send an image (JPEG, PNG, …) as multipart field 'file' or as the request body"
        raise UploadError(400, "empty", message) from None
    except images.NotAnImageError as exc:
        raise UploadError(415, "not_an_image", _without_name(exc)) from None
    except images.TooManyPixelsError as exc:
        raise UploadError(413, "too_many_pixels", _without_name(exc).replace(" (raise it with --max-pixels or $FER_MAX_PIXELS)", "")) from None
    except images.ImageError as exc:
        raise UploadError(422, "corrupt_image", _without_name(exc)) from None


def _without_name(exc: Exception) -> str:
    """The message of an :class:`~fer_features.faces.images.ImageError` about an upload, without its ``upload:`` prefix."""
    return str(exc).removeprefix("upload: ")


async def read_upload(request, max_bytes: int) -> bytes:
    """The image bytes of a request: multipart field ``file`` (or its only file), else the raw body.

    The body is read in chunks and refused as soon as it passes the limit, so an oversized
    upload is never held in memory whole.

    Parameters
    ----------
    request : starlette.requests.Request
    max_bytes : int
        Largest image accepted, in bytes (a multipart envelope may add
        :data:`MULTIPART_OVERHEAD`).

    Returns
    -------
    bytes
        Possibly empty.

    Raises
    ------
    UploadError
        413 ``too_large`` past the limit; 400 ``empty`` for a multipart form with no file.
    """
    from starlette.requests import Request

    multipart = request.headers.get("content-type", "").startswith("multipart/form-data")
    limit = max_bytes + (MULTIPART_OVERHEAD if multipart else 0)
    too_large = UploadError(413, "too_large", f"upload is over the limit of {max_bytes:,} bytes")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    body = b"".join(chunks)
    if not multipart:
        return body

    async def replay():
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(request.scope, replay).form(max_files=1, max_fields=8)
    except Exception as exc:  # starlette raises HTTPException(400) or MultiPartException for a bad envelope
        raise UploadError(400, "bad_multipart", f"malformed multipart form ({getattr(exc, 'detail', exc)})") from None
    files = [v for v in form.values() if hasattr(v, "read")]
    upload = form.get("file") if hasattr(form.get("file"), "read") else (files[0] if len(files) == 1 else None)
    if upload is None:
        raise UploadError(400, "empty", "multipart form has no file: send the image as field 'file'")
    data = await upload.read()
    if len(data) > max_bytes:
        raise too_large
    return data


def create_app(
    model_path: str | os.PathLike | None = None,
    *,
    model=None,
    recognizer=None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    detector: str = DEFAULT_DETECTOR,
    upsample: int | None = None,
    min_score: float | None = None,
    trust_pickle: bool = False,
    max_batch: int = 8,
):
    """Build the ``fer serve`` app.

    Parameters
    ----------
    model_path : path-like, optional
        Trained pipeline (``.skops``; a pickle only with ``trust_pickle``), loaded once when the
        app starts (its lifespan) by :func:`fer_features.persist.files.load_model`; defaults to
        :func:`fer_features.persist.bundled.default_model_path` (``$FER_MODEL``, else the bundled
        ``default``); a bundled model's name (``'accurate'``) picks it. Its model card, if any, is read for
        ``/health``.
    model : fitted pipeline, optional
        An already loaded model; ``model_path`` then only names it.
    recognizer : fer_features.Recognizer, optional
        An already made recognizer (its model, detector and defaults are used); ``model_path``
        then only names it.
    max_bytes : int, default=10 MiB
        Largest upload, in bytes.
    max_pixels : int, default=25_000_000
        Largest image, in pixels.
    detector : {'yuface', 'hog', 'mmod'} or a registered name, default='yuface'
    upsample : int, optional
        Default of the ``upsample`` query parameter (see :func:`fer_features.faces.alignment.detect_faces`).
    min_score : float, optional
        Default detection threshold (see :func:`fer_features.faces.alignment.detect_faces`).
    trust_pickle : bool, default=False
        Load a pickle-based (joblib) model file; it can run code, so only for files you made.
    max_batch : int, default=8
        Most concurrent requests classified in one model call (:class:`DynamicBatcher`); 1
        classifies one image at a time.

    Returns
    -------
    fastapi.FastAPI
        Serve it with uvicorn; in tests use ``with fastapi.testclient.TestClient(app)`` so the
        model is loaded.

    Raises
    ------
    fer_features.persist.files.ModelError
        At start-up, when the model file is missing, unreadable, not a fer-features pipeline, or
        a pickle without ``trust_pickle``.
    """
    from fastapi import FastAPI, Query, Request
    from fastapi.responses import FileResponse, JSONResponse, Response
    from fastapi.staticfiles import StaticFiles
    from starlette.concurrency import run_in_threadpool

    from fer_features import __version__
    from fer_features.inference.recognizer import Recognizer
    from fer_features.persist.bundled import default_model_path, resolve_model
    from fer_features.persist.cards import read_card
    from fer_features.persist.files import model_format

    given = recognizer is not None or model is not None
    path = resolve_model(model_path) if model_path is not None else (None if given else default_model_path())
    # dlib's detectors and the pipeline are shared objects: one inference at a time (the
    # machine's cores are used inside it); reading and decoding uploads run in parallel. Requests
    # that arrive while one is classified are classified together in the next model call
    # (dynamic batching); several worker processes (`fer serve --workers N`) run in parallel.
    def classify(images_and_options: list) -> list:
        images = [image for image, _ in images_and_options]
        up, score = images_and_options[0][1]
        results = app.state.recognizer.predict_results(images, upsample=up, min_score=score)
        app.state.served += len(images)
        return [result.faces for result in results]

    batcher = DynamicBatcher(classify, max_batch=max_batch)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        options = dict(detector=detector, upsample=upsample, min_score=min_score, progress=False, trusted=trust_pickle)
        app.state.recognizer = recognizer or Recognizer(model if model is not None else path, **options)
        app.state.model = app.state.recognizer.model
        app.state.model_format = model_format(path) if path is not None and path.is_file() else None
        app.state.classes = app.state.recognizer.classes
        app.state.card = read_card(path) if path is not None else {}
        app.state.started = time.time()
        app.state.served = 0
        yield

    app = FastAPI(
        title="fer-features",
        version=__version__,
        summary="Facial expression recognition: faces in an image → emotion and probabilities.",
        lifespan=lifespan,
    )
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.exception_handler(UploadError)
    async def _upload_error(request: Request, exc: UploadError):
        return JSONResponse({"error": exc.code, "detail": str(exc)}, status_code=exc.status)

    @app.exception_handler(Exception)
    async def _server_error(request: Request, exc: Exception):  # a bug, still answered in JSON
        return JSONResponse({"error": "internal", "detail": f"{type(exc).__name__}: {exc}"}, status_code=500)

    def infer(image: np.ndarray, up: int, score: float | None):
        return batcher.submit((image, (up, score)), key=(up, score))

    async def run(request: Request, up: int | None, score: float | None):
        t0 = time.perf_counter()
        data = await read_upload(request, max_bytes)
        t1 = time.perf_counter()
        image = await run_in_threadpool(decode_upload, data, max_pixels=max_pixels)
        t2 = time.perf_counter()
        up = upsample if up is None else up
        score = min_score if score is None else score
        job = await run_in_threadpool(infer, image, up, score)
        timing = {
            "read_ms": round((t1 - t0) * 1e3, 2),
            "decode_ms": round((t2 - t1) * 1e3, 2),
            "predict_ms": round(job.seconds * 1e3, 2),
            "batch_size": job.batch_size,
            "total_ms": round((time.perf_counter() - t0) * 1e3, 2),
        }
        return image, job.result, timing

    up_query = Query(
        None, ge=0, le=2, description="Doublings of the detection resolution (finds smaller faces, slower; default: the detector's)."
    )
    score_query = Query(None, description="Drop detections scoring lower (default: the detector's, 0.5 for yuface, 0.3 for hog).")

    @app.post("/predict", openapi_extra=_REQUEST_BODY, responses=_ERRORS)
    async def predict(request: Request, upsample: int | None = up_query, min_score: float | None = score_query) -> dict:
        """Faces in the image, each with its box ``[left, top, right, bottom]`` in pixels, label and
        probability per emotion (highest detection score first), plus the image size, the model's
        classes and timings in milliseconds."""
        image, faces, timing = await run(request, upsample, min_score)
        return {
            "width": int(image.shape[1]),
            "height": int(image.shape[0]),
            "classes": app.state.classes,
            "faces": [
                {
                    "box": list(f.box),
                    "label": f.label,
                    "probabilities": f.probabilities,
                    "detection_score": f.detection_score,
                }
                for f in faces
            ],
            "timing": timing,
        }

    @app.post(
        "/annotate",
        openapi_extra=_REQUEST_BODY,
        responses={**_ERRORS, 200: {"content": {"image/png": {}}, "description": "The annotated image."}},
        response_class=Response,
    )
    async def annotated(request: Request, upsample: int | None = up_query, min_score: float | None = score_query):
        """The image as PNG with each face's box and ``label probability`` drawn."""
        image, faces, timing = await run(request, upsample, min_score)
        buf = io.BytesIO()
        await run_in_threadpool(lambda: app.state.recognizer.annotate(image, faces).save(buf, format="PNG"))
        headers = {"X-Faces": str(len(faces)), "X-Total-Ms": str(timing["total_ms"])}
        return Response(buf.getvalue(), media_type="image/png", headers=headers)

    @app.get("/health")
    def health() -> dict:
        """Status, model, classes and upload limits."""
        card = app.state.card
        return {
            "status": "ok",
            "model": str(path) if path is not None else None,
            "model_format": app.state.model_format,
            "features": card.get("features"),
            "classifier": card.get("classifier"),
            "classes": app.state.classes,
            "max_bytes": max_bytes,
            "max_pixels": max_pixels,
            "detector": app.state.recognizer.detector,
            "served": app.state.served,
            "uptime_s": round(time.time() - app.state.started, 1),
            "worker_pid": os.getpid(),
        }

    @app.get("/", include_in_schema=False)
    def index():
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    return app


#: Environment variable through which ``fer serve --workers N`` hands :func:`create_app`'s options
#: (JSON) to its worker processes.
OPTIONS_ENV = "FER_SERVE_OPTIONS"


def app_from_environment():
    """The app of one worker process of ``fer serve --workers N`` (an ASGI app factory for uvicorn).

    uvicorn starts each worker in a fresh process that imports the app by name, so the options
    cannot be passed as objects: ``fer serve`` writes :func:`create_app`'s keyword arguments as
    JSON into the ``FER_SERVE_OPTIONS`` environment variable before it starts them, and each
    worker loads its own copy of the model from the file.

    Returns
    -------
    fastapi.FastAPI

    Raises
    ------
    RuntimeError
        If ``FER_SERVE_OPTIONS`` is not set or not a JSON object.
    """
    raw = os.environ.get(OPTIONS_ENV)
    try:
        options = json.loads(raw) if raw else None
    except json.JSONDecodeError:
        options = None
    if not isinstance(options, dict):
        raise RuntimeError(f"{OPTIONS_ENV} must hold create_app's options as a JSON object (fer serve --workers sets it)")
    return create_app(**options)
