"""Steady under load: speed with a busy core, and memory on long videos and long-running servers.

Three measurements, each printing JSON lines and a markdown table (BENCHMARKS.md, "Busy machine"
and "Memory on long runs")::

    python benchmarks/steady.py busy --rounds 2          # quiet vs one busy core, ours vs the fer package
    python benchmarks/steady.py video --frames 300,9000  # peak RSS of `fer predict VIDEO --out CSV`
    python benchmarks/steady.py serve --requests 100,5000  # RSS of `fer serve` after N requests
    python benchmarks/steady.py photo --rounds 8 --baseline DIR  # quiet photo latency, ours vs an earlier checkout

``busy``: each round runs, quiet and then with one plain busy loop (``python -c "while True:
pass"``, a process that takes one core), a child process of ours and one of the ``fer`` package
(``../shared/peer``, its own venv at ``--peer-python``), the order swapped every round. Each
child measures in process: crops/s on the 3,589 PrivateTest crops (ours: the median of 3
``predict_proba`` calls of the model on the ``(3589, 48, 48)`` array, as ``benchmarks/speed.py``,
and one ``Recognizer.predict`` on it; the package: its own classify loop) and per-photo latency,
p50 and p95 of 30 calls on skimage's astronaut after a warm-up (ours: ``Recognizer.predict`` on
the file; the package: ``FER().detect_emotions``). Ours also measures ``fer serve`` (one and four
clients; p50 of the request) and a 150-frame video (frames/s of ``fer predict VIDEO``'s path).

``photo``: the quiet per-photo latency of ours against the checkout at ``--baseline``, nothing
else measured: each round runs one child of each (the order swapped every round), each timing
``--calls`` calls of ``Recognizer.predict`` on the astronaut after a warm-up. A photo takes tens
of milliseconds, so two children minutes apart differ by more than a code change does; many
short alternating rounds, and the median of the per-round ratio, tell the two apart.

``video``: a clip of N frames made from the astronaut (shifted a few pixels per frame, 512x512,
MPEG-4) goes through ``fer predict CLIP --out CSV`` in a child process; its peak resident memory
(``ru_maxrss``) is reported per N.

``serve``: ``fer serve`` runs as a child; requests (the astronaut as JPEG) are sent four at a time;
the server's resident memory is read after each N of ``--requests``.

Timings on shared machines mean something only as ratios within one run: the CPU model and the
1-minute load average are printed with every result.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from serve import rss_mib, wait_until_up  # benchmarks/serve.py, beside this script

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
FER_ZIP = SHARED / "data" / "fer2013.zip"


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def load() -> float:
    return round(os.getloadavg()[0], 2)


def astronaut_png(folder: Path) -> Path:
    from PIL import Image
    from skimage import data

    path = folder / "astronaut.png"
    Image.fromarray(data.astronaut()).save(path)
    return path


def make_clip(path: Path, frames: int, side: int = 512) -> Path:
    """The astronaut, shifted a few pixels per frame: one face a frame, MPEG-4 Part 2 at 25 fps."""
    import cv2
    import numpy as np
    from skimage import data

    big = cv2.resize(np.ascontiguousarray(data.astronaut()[:, :, ::-1]), (side + 40, side + 40))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (side, side))
    for i in range(frames):
        dx, dy = 20 + int(round(12 * np.sin(i / 4))), 20 + (i % 5) - 2
        writer.write(np.ascontiguousarray(big[dy : dy + side, dx : dx + side]))
    writer.release()
    return path


def percentiles(seconds: list[float]) -> dict:
    import numpy as np

    ms = np.asarray(seconds) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 1), "p95_ms": round(float(np.percentile(ms, 95)), 1)}


# --------------------------------------------------------------------------- children (run in process)


def latency(call, *, calls: int, warmup: int = 1) -> dict:
    """p50/p95 of ``calls`` timed calls of ``call()`` after ``warmup`` untimed ones."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(calls):
        t = time.perf_counter()
        call()
        times.append(time.perf_counter() - t)
    return percentiles(times)


def child_ours(model: str, photo: str, clip: str) -> dict:
    """Our numbers: crops/s, photo p50/p95, fer serve (1 and 4 clients), video frames/s."""
    from fer_features import Recognizer

    try:
        from fer_features.data.fer2013 import load_fer2013
    except ImportError:  # a checkout from before the sub-packages (--baseline)
        from fer_features.datasets import load_fer2013

    rec = Recognizer(model)
    X, _ = load_fer2013(FER_ZIP).split("PrivateTest")
    rec.predict(X[:8])
    calls = []
    for _ in range(3):  # the model on all crops in one call, as benchmarks/speed.py
        t = time.perf_counter()
        rec.model.predict_proba(X)
        calls.append(time.perf_counter() - t)
    crops_s = len(X) / statistics.median(calls)
    t = time.perf_counter()
    rec.predict(X)  # the Recognizer's path: batches of 64 crops
    recognizer_crops_s = len(X) / (time.perf_counter() - t)
    photo_ms = latency(lambda: rec.predict(photo), calls=30)
    out = {"crops_per_s": round(crops_s), "recognizer_crops_per_s": round(recognizer_crops_s), "photo": photo_ms}
    try:
        summary = rec.predict_video(clip, stream=True).run()
    except TypeError:  # a checkout from before streaming (--baseline)
        summary = rec.predict_video(clip).attrs["summary"]
    out["video_fps"] = summary.fps
    out["serve"] = {f"{n} clients": serve_latency(model, photo, requests=40, concurrency=n) for n in (1, 4)}
    return out


def child_photo(model: str, photo: str, calls: str) -> dict:
    """Photo latency alone: p50/p95 of ``calls`` calls of ``Recognizer.predict`` on the file."""
    from fer_features import Recognizer

    rec = Recognizer(model)
    return {"photo": latency(lambda: rec.predict(photo), calls=int(calls), warmup=3)}


def child_peer(photo: str) -> dict:
    """The fer package's numbers (run in its venv): crops/s of its classify loop, photo p50/p95."""
    import zipfile

    import cv2
    import numpy as np
    from fer.fer import FER
    from PIL import Image

    with zipfile.ZipFile(FER_ZIP) as z:
        names = sorted(n for n in z.namelist() if "/PrivateTest_" in n)
        X = np.stack([np.array(Image.open(io.BytesIO(z.read(n))).convert("L")) for n in names])
    det = FER()
    t = time.perf_counter()
    pre = np.stack([((cv2.resize(f, (64, 64)).astype("float32") / 255.0) - 0.5) * 2 for f in X])
    det._classify_emotions(pre)  # the package's own loop: one invoke per face
    crops_s = len(X) / (time.perf_counter() - t)
    img = cv2.imread(photo)
    return {"crops_per_s": round(crops_s), "photo": latency(lambda: det.detect_emotions(img), calls=30)}


def serve_latency(model: str, photo: str, *, requests: int, concurrency: int, sample_every: int = 0) -> dict:
    """Start ``fer serve``; p50/p95 of ``requests`` POSTs sent ``concurrency`` at a time (and RSS samples)."""
    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "fer_features.cli", "serve", "--model", model, "--port", str(port), "--log-level", "warning"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url, body = f"http://127.0.0.1:{port}", Path(photo).read_bytes()
    try:
        wait_until_up(proc, url, cmd)

        def one(client):
            t = time.perf_counter()
            r = client.post(f"{url}/predict", content=body, headers={"content-type": "image/png"})
            r.raise_for_status()
            return time.perf_counter() - t

        rss, times = {}, []
        with httpx.Client(timeout=120, limits=httpx.Limits(max_connections=concurrency)) as client:
            with ThreadPoolExecutor(concurrency) as pool:
                list(pool.map(lambda _: one(client), range(4 * concurrency)))  # warm-up
                step = sample_every or requests
                for done in range(step, requests + 1, step):
                    times += list(pool.map(lambda _: one(client), range(step)))
                    rss[done] = round(rss_mib(proc.pid), 1)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return {**percentiles(times), **({"rss_mib": rss} if sample_every else {})}


# --------------------------------------------------------------------------- the three measurements


def run_child(python: str, args: list[str], pythonpath: str | None = None) -> dict:
    env = {**os.environ, **({"PYTHONPATH": pythonpath} if pythonpath else {})}
    out = subprocess.run([python, __file__, "child", *args], cwd=ROOT, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise SystemExit(f"child {' '.join(args)} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def busy(args) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        photo = str(astronaut_png(Path(tmp)))
        clip = str(make_clip(Path(tmp) / "clip.mp4", 150))
        for r in range(args.rounds):
            for condition in ("quiet", "busy"):
                hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if condition == "busy" else None
                try:
                    time.sleep(1.0)
                    order = [("ours", sys.executable, ["ours", args.model, photo, clip], None),
                             ("fer package", args.peer_python, ["peer", photo], None)]  # fmt: skip
                    if args.baseline:  # the same code of an earlier commit, checked out there
                        order.insert(1, (f"ours at {args.baseline}", sys.executable, ["ours", args.model, photo, clip], args.baseline))
                    for who, python, child_args, path in order if r % 2 == 0 else order[::-1]:
                        before = load()
                        result = run_child(python, child_args, path)
                        row = {"round": r + 1, "condition": condition, "who": who, **result, "load_before": before, "load_after": load()}
                        print(json.dumps(row), flush=True)
                        rows.append(row)
                finally:
                    if hog is not None:
                        hog.kill()
                        hog.wait()
    return rows


def photo(args) -> list[dict]:
    if not args.baseline:
        raise SystemExit("photo compares two checkouts: pass --baseline DIR")
    rows, ratios = [], []
    with tempfile.TemporaryDirectory() as tmp:
        path = str(astronaut_png(Path(tmp)))
        order = [("ours", None), (f"ours at {args.baseline}", args.baseline)]
        for r in range(args.rounds):
            p50 = {}
            for who, checkout in order if r % 2 == 0 else order[::-1]:
                before = load()
                result = run_child(sys.executable, ["photo", args.model, path, str(args.calls)], checkout)
                row = {"round": r + 1, "who": who, **result, "load_before": before, "load_after": load()}
                print(json.dumps(row), flush=True)
                rows.append(row)
                p50[checkout] = result["photo"]["p50_ms"]
            ratios.append(p50[None] / p50[args.baseline])
    print(json.dumps({"p50_ratio_ours_to_baseline": {"per_round": [round(x, 3) for x in ratios],
                                                     "median": round(statistics.median(ratios), 3)}}), flush=True)  # fmt: skip
    return rows


def video(args) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in map(int, args.frames.split(",")):
            clip = make_clip(Path(tmp) / f"clip{n}.mp4", n)
            cmd = [sys.executable, "-m", "fer_features.cli", "predict", str(clip), "--model", args.model, "--out", str(Path(tmp) / "p.csv"), "--json"]
            t = time.perf_counter()
            proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            stdout = proc.stdout.read()
            _, status, usage = os.wait4(proc.pid, 0)
            if os.waitstatus_to_exitcode(status) != 0:
                raise SystemExit(f"{' '.join(cmd)} failed")
            result = json.loads(stdout)
            row = {"frames": n, "faces": result["faces"], "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
                   "seconds": round(time.perf_counter() - t, 1), "frames_per_s": result["frames_per_second"], "load": load()}  # fmt: skip
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


def serve(args) -> list[dict]:
    counts = sorted(map(int, args.requests.split(",")))
    with tempfile.TemporaryDirectory() as tmp:
        photo = str(astronaut_png(Path(tmp)))
        result = serve_latency(args.model, photo, requests=counts[-1], concurrency=4, sample_every=counts[0])
    rows = [{"requests": n, "rss_mib": result["rss_mib"][n], "load": load()} for n in counts]
    print(json.dumps({"all_samples": result["rss_mib"], "p50_ms": result["p50_ms"], "p95_ms": result["p95_ms"]}), flush=True)
    return rows


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "child":
        who, *rest = sys.argv[2:]
        print(json.dumps({"ours": child_ours, "photo": child_photo, "peer": child_peer}[who](*rest)))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("busy", "photo", "video", "serve"))
    parser.add_argument("--model", default="default", help="a bundled model's name or a model file")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--peer-python", default="/tmp/peer-venv/bin/python")
    parser.add_argument("--baseline", help="busy, photo: also measure the fer_features of this checkout (an earlier commit)")
    parser.add_argument("--calls", type=int, default=60, help="photo: timed calls per child")
    parser.add_argument("--frames", default="300,9000")
    parser.add_argument("--requests", default="100,5000")
    args = parser.parse_args()
    print(json.dumps({"cpu": cpu_model(), "cores": len(os.sched_getaffinity(0)), "load": load(), "argv": sys.argv[1:]}), flush=True)
    {"busy": busy, "photo": photo, "video": video, "serve": serve}[args.what](args)


if __name__ == "__main__":
    main()
