"""``fer serve``'s API: good and bad uploads through FastAPI's TestClient, and a bounded load test
against a real uvicorn server on 127.0.0.1."""

from __future__ import annotations

import io
import json
import os
import time
import warnings
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

with warnings.catch_warnings():  # starlette 1.x suggests httpx2 for its TestClient; httpx still works
    warnings.filterwarnings("ignore", message=".*httpx2.*")
    from fastapi.testclient import TestClient  # noqa: E402

from fer_features.config import EMOTIONS  # noqa: E402
from fer_features.serve import create_app, decode_upload  # noqa: E402
from fer_features.serve.app import STATIC_DIR, UploadError  # noqa: E402

# Where the face is in skimage's astronaut (512x512), loosely: (left, top, right, bottom).
ASTRONAUT_FACE = (140, 30, 270, 175)


def encode(image: np.ndarray, fmt: str = "JPEG", **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format=fmt, **kw)
    return buf.getvalue()


@pytest.fixture(scope="module")
def astronaut_jpeg() -> bytes:
    from skimage import data

    return encode(data.astronaut(), quality=90)


@pytest.fixture(scope="module")
def client(tiny_model_path):
    # small limits, so that "too large" needs no big payloads
    with TestClient(create_app(tiny_model_path, max_bytes=200_000, max_pixels=600 * 600)) as c:
        yield c


def assert_json_error(response, status: int, code: str, *fragments: str):
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["error"] == code, body
    for fragment in fragments:
        assert fragment in body["detail"], body


# --------------------------------------------------------------------------- good uploads


def check_astronaut(body: dict) -> None:
    assert (body["width"], body["height"]) == (512, 512)
    assert body["classes"] == sorted(EMOTIONS)
    assert len(body["faces"]) == 1, body["faces"]
    face = body["faces"][0]
    left, t, r, b = face["box"]
    assert left >= ASTRONAUT_FACE[0] and t >= ASTRONAUT_FACE[1] and r <= ASTRONAUT_FACE[2] and b <= ASTRONAUT_FACE[3]
    assert set(face["probabilities"]) == set(EMOTIONS)
    assert sum(face["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
    assert face["label"] == max(face["probabilities"], key=face["probabilities"].get)
    assert face["detection_score"] > 0.3
    timing = body["timing"]
    assert timing["total_ms"] >= timing["predict_ms"] > 0
    assert timing["batch_size"] == 1  # one client: never waits for, or shares, a batch


def test_predict_multipart_astronaut(client, astronaut_jpeg, tiny_model):
    response = client.post("/predict", files={"file": ("astronaut.jpg", astronaut_jpeg, "image/jpeg")})
    assert response.status_code == 200, response.text
    body = response.json()
    check_astronaut(body)
    # the same probabilities as the library's own predict path
    from fer_features.inference.photos import predict_photos
    from fer_features.serve import decode_upload as decode

    (faces,) = predict_photos(tiny_model, [decode(astronaut_jpeg)])
    assert body["faces"][0]["probabilities"] == faces[0].probabilities


def test_predict_raw_body_and_other_field_name(client, astronaut_jpeg):
    raw = client.post("/predict", content=astronaut_jpeg, headers={"content-type": "image/jpeg"})
    assert raw.status_code == 200, raw.text
    check_astronaut(raw.json())
    other = client.post("/predict", files={"photo": ("a.jpg", astronaut_jpeg, "image/jpeg")})
    assert other.status_code == 200 and other.json()["faces"] == raw.json()["faces"]


def test_predict_no_face_and_face_crop(client, patterns):
    blank = client.post("/predict", content=encode(np.full((200, 300, 3), 90, np.uint8), "PNG"))
    assert blank.status_code == 200 and blank.json()["faces"] == []
    crop = client.post("/predict", content=encode(patterns[0][0], "PNG"))
    assert crop.status_code == 200
    (face,) = crop.json()["faces"]
    assert face["box"] == [0, 0, 48, 48] and face["detection_score"] is None


def test_annotate_returns_png(client, astronaut_jpeg):
    response = client.post("/annotate", content=astronaut_jpeg)
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert response.headers["x-faces"] == "1"
    assert Image.open(io.BytesIO(response.content)).size == (512, 512)


def test_health_docs_and_page(client, tiny_model_path):
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["model"] == str(tiny_model_path)
    assert health["classes"] == sorted(EMOTIONS) and health["features"] == "hog"
    assert client.get("/docs").status_code == 200
    schema = client.get("/openapi.json").json()
    body = schema["paths"]["/predict"]["post"]["requestBody"]["content"]
    assert {"multipart/form-data", "image/jpeg"} <= set(body)
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for tab in ("tab-upload", "tab-webcam", "tab-facematch"):
        assert f'id="{tab}"' in page.text
    for asset in ("app.js", "style.css"):
        assert client.get(f"/static/{asset}").status_code == 200


def test_static_files_are_package_data():
    """The page ships inside the package (pyproject's package-data), not only in the source tree."""
    from importlib import resources

    folder = resources.files("fer_features.serve") / "static"
    assert {"index.html", "app.js", "style.css"} <= {p.name for p in folder.iterdir()}
    assert STATIC_DIR.is_dir()
    import tomllib

    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    globs = pyproject["tool"]["setuptools"]["package-data"]["fer_features.serve"]
    assert {"static/*.html", "static/*.js", "static/*.css"} <= set(globs)


# --------------------------------------------------------------------------- bad uploads


FORM_WITHOUT_FILE = b'--xyz\r\nContent-Disposition: form-data; name="note"\r\n\r\nhello\r\n--xyz--\r\n'


def truncated_jpeg(data: bytes) -> bytes:
    return data[: len(data) // 2]


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        ("empty body", 400, "empty"),
        ("empty multipart file", 400, "empty"),
        ("multipart without file", 400, "empty"),
        ("malformed multipart", 400, "bad_multipart"),
        ("not an image", 415, "not_an_image"),
        ("too many bytes", 413, "too_large"),
        ("too many bytes, multipart", 413, "too_large"),
        ("too many pixels", 413, "too_many_pixels"),
        ("truncated JPEG", 422, "corrupt_image"),
        ("bad upsample", 422, None),
    ],
)
def test_bad_uploads_get_4xx_json_and_server_goes_on(client, astronaut_jpeg, case, status, code):
    big = os.urandom(300_000)
    requests = {
        "empty body": lambda: client.post("/predict", content=b""),
        "empty multipart file": lambda: client.post("/predict", files={"file": ("e.jpg", b"", "image/jpeg")}),
        "multipart without file": lambda: client.post(
            "/predict", content=FORM_WITHOUT_FILE, headers={"content-type": "multipart/form-data; boundary=xyz"}
        ),
        "malformed multipart": lambda: client.post(
            "/predict", content=b"no boundary here", headers={"content-type": "multipart/form-data; boundary=xyz"}
        ),
        "not an image": lambda: client.post("/predict", content=b"%PDF-1.4 this is not a picture" * 10),
        "too many bytes": lambda: client.post("/predict", content=big, headers={"content-type": "image/jpeg"}),
        "too many bytes, multipart": lambda: client.post("/predict", files={"file": ("big.jpg", big, "image/jpeg")}),
        "too many pixels": lambda: client.post("/predict", content=encode(np.zeros((700, 700), np.uint8), "PNG")),
        "truncated JPEG": lambda: client.post("/predict", content=truncated_jpeg(astronaut_jpeg)),
        "bad upsample": lambda: client.post("/predict?upsample=9", content=astronaut_jpeg),
    }
    response = requests[case]()
    assert 400 <= response.status_code < 500
    if code is None:
        assert response.status_code == status and response.json()["detail"]
    else:
        assert_json_error(response, status, code)
    assert client.post("/predict", content=astronaut_jpeg).status_code == 200  # still serving


def test_decode_upload_direct(astronaut_jpeg):
    image = decode_upload(astronaut_jpeg)
    assert image.shape == (512, 512, 3) and image.dtype == np.uint8
    # a header claiming a huge image is refused before any pixel is decoded
    small = encode(np.zeros((10, 10), np.uint8), "PNG")
    for side in (3_000, 100_000):  # over our limit; over Pillow's decompression-bomb limit too
        ihdr = b"IHDR" + side.to_bytes(4, "big") * 2 + small[24:29]
        huge = small[:12] + ihdr + zlib.crc32(ihdr).to_bytes(4, "big") + small[33:]
        t = time.perf_counter()
        with pytest.raises(UploadError) as info:
            decode_upload(huge, max_pixels=1_000_000)
        assert info.value.status == 413 and info.value.code == "too_many_pixels"
        assert time.perf_counter() - t < 0.5
    rgba = np.zeros((20, 30, 4), np.uint8)
    assert decode_upload(encode(rgba, "PNG")).shape == (20, 30, 3)


def test_missing_model_fails_at_start_up(tmp_path):
    from fer_features.persist.files import ModelError

    app = create_app(tmp_path / "none.skops")
    with pytest.raises(ModelError, match="none.skops"):
        with TestClient(app):
            pass


# --------------------------------------------------------------------------- load test


def rss_mib() -> float:
    """Resident memory of this process (the server runs in one of its threads), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def test_load_200_requests_4_concurrent(live_server, tmp_path):
    """200 requests, 4 at a time, on loopback: no errors, no memory growth; latency percentiles
    recorded (printed, written to the test's tmp folder and to $FER_BENCH_OUT if set)."""
    import httpx
    from skimage import data

    photo = encode(np.asarray(Image.fromarray(data.astronaut()).resize((320, 320))), quality=90)
    url = f"{live_server}/predict"

    def one(client: httpx.Client) -> tuple[int, float, list, int]:
        t = time.perf_counter()
        r = client.post(url, content=photo, headers={"content-type": "image/jpeg"})
        body = r.json() if r.status_code == 200 else {}
        return r.status_code, time.perf_counter() - t, body.get("faces"), body.get("timing", {}).get("batch_size", 0)

    with httpx.Client(timeout=60, limits=httpx.Limits(max_connections=4)) as client:
        for _ in range(10):  # warm-up: lazy imports, dlib models, allocator pools
            status, _, alone, _ = one(client)
            assert status == 200
        before = rss_mib()
        t0 = time.perf_counter()
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda _: one(client), range(200)))
        wall = time.perf_counter() - t0
        after = rss_mib()
    statuses = [s for s, _, _, _ in results]
    assert statuses.count(200) == 200, {s: statuses.count(s) for s in set(statuses)}
    assert all(len(f) == 1 for _, _, f, _ in results)
    # requests classified together in one batch get the answer they get alone
    for _, _, faces, _ in results:
        assert faces[0]["box"] == alone[0]["box"] and faces[0]["label"] == alone[0]["label"]
        assert faces[0]["probabilities"] == pytest.approx(alone[0]["probabilities"], abs=2e-4)
    latency = np.array([dt for _, dt, _, _ in results]) * 1000
    report = {
        "requests": 200,
        "concurrency": 4,
        "image": "astronaut 320x320 JPEG",
        "p50_ms": round(float(np.percentile(latency, 50)), 1),
        "p90_ms": round(float(np.percentile(latency, 90)), 1),
        "p99_ms": round(float(np.percentile(latency, 99)), 1),
        "max_ms": round(float(latency.max()), 1),
        "throughput_rps": round(200 / wall, 2),
        "mean_batch": round(float(np.mean([b for _, _, _, b in results])), 2),
        "rss_before_mib": round(before, 1),
        "rss_after_mib": round(after, 1),
    }
    print(json.dumps(report))
    (tmp_path / "load.json").write_text(json.dumps(report, indent=2))
    if os.environ.get("FER_BENCH_OUT"):
        Path(os.environ["FER_BENCH_OUT"]).write_text(json.dumps(report, indent=2))
    # no leak: 200 requests may not add more than 50 MiB (a leaked 320x320 image per request would be ~60 MiB)
    assert after - before < 50, report


# --------------------------------------------------------------------------- the `fer serve` command


def test_fer_serve_user_errors(tiny_model_path, tmp_path):
    import socket

    from conftest import assert_user_error, fer

    assert_user_error(fer("serve", "--model", tmp_path / "none.skops"), "none.skops", "fer train")
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        assert_user_error(fer("serve", "--model", tiny_model_path, "--port", port), f"127.0.0.1:{port}", "--port")


def children(pid: int) -> list[int]:
    """Process ids of ``pid``'s child processes (Linux /proc)."""
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


@pytest.mark.parametrize("workers", [1, 2])
def test_fer_serve_runs_and_answers(tiny_model_path, astronaut_jpeg, workers):
    """`fer serve` in a subprocess: it listens, answers /health and /predict, and stops on SIGINT;
    with --workers 2, from two worker processes of its own."""
    import signal
    import socket
    import subprocess
    import sys

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    repo = Path(__file__).parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(repo), os.environ.get("PYTHONPATH")]))}
    cmd = [sys.executable, "-m", "fer_features.cli", "serve", "--model", str(tiny_model_path), "--port", str(port)]
    cmd += ["--log-level", "warning", "--workers", str(workers)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read()
                assert time.monotonic() < deadline, "fer serve did not answer within 60 s"
                time.sleep(0.2)
        assert health.json()["model"] == str(tiny_model_path)
        if workers == 1:
            assert health.json()["worker_pid"] == proc.pid
        elif Path(f"/proc/{proc.pid}/task").is_dir():
            assert health.json()["worker_pid"] in children(proc.pid)
            deadline = time.monotonic() + 60
            while len(children(proc.pid)) < workers:  # the other worker may still be loading
                assert time.monotonic() < deadline, "fer serve --workers 2 did not start 2 workers"
                time.sleep(0.2)
        answer = httpx.post(f"http://127.0.0.1:{port}/predict", content=astronaut_jpeg, timeout=30)
        assert answer.status_code == 200 and len(answer.json()["faces"]) == 1
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, proc.stdout.read()


@pytest.mark.parametrize(
    "kind", ["1x1 PNG", "1x3000 strip", "16-bit grey PNG", "CMYK JPEG", "palette GIF", "RGBA PNG", "grey JPEG", "BMP"]
)
def test_odd_but_valid_images_are_answered(client, kind):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    buf = io.BytesIO()
    if kind == "1x1 PNG":
        Image.fromarray(rgb[:1, :1]).save(buf, "PNG")
    elif kind == "1x3000 strip":
        Image.fromarray(np.zeros((1, 3000), np.uint8)).save(buf, "PNG")
    elif kind == "16-bit grey PNG":
        Image.fromarray((rng.integers(0, 65536, (60, 80))).astype(np.uint16)).save(buf, "PNG")
    elif kind == "CMYK JPEG":
        Image.fromarray(rgb).convert("CMYK").save(buf, "JPEG")
    elif kind == "palette GIF":
        Image.fromarray(rgb).convert("P").save(buf, "GIF")
    elif kind == "RGBA PNG":
        Image.fromarray(np.dstack([rgb, rgb[..., :1]])).save(buf, "PNG")
    elif kind == "grey JPEG":
        Image.fromarray(rgb[..., 0]).save(buf, "JPEG")
    else:
        Image.fromarray(rgb).save(buf, "BMP")
    response = client.post("/predict", content=buf.getvalue())
    assert response.status_code == 200, response.text
    assert response.json()["faces"] == []


def test_worker_app_reads_its_options_from_the_environment(tiny_model_path, astronaut_jpeg, monkeypatch):
    from fer_features.serve.app import OPTIONS_ENV, app_from_environment

    monkeypatch.delenv(OPTIONS_ENV, raising=False)
    with pytest.raises(RuntimeError, match=OPTIONS_ENV):
        app_from_environment()
    monkeypatch.setenv(OPTIONS_ENV, "[1, 2]")
    with pytest.raises(RuntimeError, match="JSON object"):
        app_from_environment()
    monkeypatch.setenv(OPTIONS_ENV, json.dumps({"model_path": str(tiny_model_path), "max_bytes": 1000}))
    with TestClient(app_from_environment()) as c:
        health = c.get("/health").json()
        assert health["model"] == str(tiny_model_path) and health["max_bytes"] == 1000
        assert c.post("/predict", content=astronaut_jpeg).status_code == 413  # its own limit, from the options
