"""``fer serve``: a :class:`fer_features.Recognizer` behind the FastAPI app, run by uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer

from fer_features import config
from fer_features.cli.common import (
    Detector, DetectorOpt, ModelOpt, TrustPickleOpt, UpsampleOpt, app, console, fail, open_recognizer, require_extra,
)  # fmt: skip


WorkersOpt = Annotated[int, typer.Option(min=1, help=(
    "Worker processes, each with its own copy of the model, classifying photos in parallel; "
    "the cores are shared out among them (torch threads per worker: cores / workers, unless OMP_NUM_THREADS is set)."
))]  # fmt: skip
MaxBatchOpt = Annotated[int, typer.Option(min=1, help=(
    "Most concurrent requests classified together in one model call (dynamic batching; 1: one photo at a time)."
))]  # fmt: skip


@app.command()
def serve(
    model: ModelOpt = None,
    host: Annotated[str, typer.Option(help="Interface to listen on; 0.0.0.0 for every interface.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    max_upload_mb: Annotated[float, typer.Option(min=0.001, help="Largest upload, in MiB.")] = 10.0,
    max_pixels: Annotated[int, typer.Option(min=1, help="Largest image, in pixels (width x height).")] = 25_000_000,
    detector: DetectorOpt = Detector(config.DEFAULT_DETECTOR),
    upsample: UpsampleOpt = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level: critical, error, warning, info, debug.")] = "info",
    trust_pickle: TrustPickleOpt = False,
    workers: WorkersOpt = 1,
    max_batch: MaxBatchOpt = 8,
) -> None:
    """Serve the model over HTTP: JSON API ([bold]POST /predict[/], [bold]GET /health[/], docs at /docs) and a demo page at /.

    The page has three tabs: Upload (a photo → boxes and probability bars), Webcam (the
    browser's camera, a few frames a second) and FaceMatch (hold the emotion shown; scored 0-100).
    Browsers allow the camera on http://127.0.0.1 or localhost only (else https).
    One worker classifies with every core, the photos that arrive while one is classified together
    in its next model call ([bold]--max-batch[/]); [bold]--workers 2[/] runs processes in parallel
    (each worker loads the model: memory x N).
    """
    import socket

    for module in ("fastapi", "uvicorn", "python_multipart"):
        require_extra(module, "fer serve")
    import uvicorn

    from fer_features.serve import create_app

    recognizer = open_recognizer(model, trust_pickle=trust_pickle, detector=detector.value, upsample=upsample, max_pixels=max_pixels)
    try:
        with socket.create_server((host, port)):
            pass
    except OSError as exc:
        fail(f"cannot listen on {host}:{port} ({exc.strerror or exc}); choose another --port or --host")
    limits = dict(max_bytes=int(max_upload_mb * 2**20), max_pixels=max_pixels, max_batch=max_batch)
    shown = f"serving [bold]{recognizer.model_path}[/] on http://{host}:{port}"
    if workers == 1:
        app_ = create_app(recognizer.model_path, recognizer=recognizer, **limits, detector=detector.value, upsample=upsample)
        console.print(f"{shown} (API docs: /docs; Ctrl+C stops)")
        uvicorn.run(app_, host=host, port=port, log_level=log_level)
        return
    import json
    import os

    from fer_features.serve.app import OPTIONS_ENV
    from fer_features.threads import cpu_cores

    options = dict(model_path=str(recognizer.model_path), **limits, detector=detector.value, upsample=upsample, trust_pickle=trust_pickle)
    del recognizer  # it was loaded to check the model; each worker loads its own
    os.environ[OPTIONS_ENV] = json.dumps(options)
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, cpu_cores() // workers)))
    console.print(f"{shown} by {workers} worker processes (API docs: /docs; Ctrl+C stops)")
    uvicorn.run(
        "fer_features.serve.app:app_from_environment", factory=True, workers=workers, host=host, port=port, log_level=log_level
    )
