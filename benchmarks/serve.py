"""Latency of ``fer serve`` under a bounded load, and frames per second of ``fer predict VIDEO``.

Usage::

    python benchmarks/serve.py --model models/fer-default.skops [--out report.md]

Server: ``fer serve`` is started as a subprocess on a free port of 127.0.0.1; after 10 warm-up
requests, ``--requests`` POST /predict requests (skimage's astronaut as JPEG, one face) are sent
``--concurrency`` at a time over loopback; latency percentiles and throughput are reported, and
the server's resident memory (with ``--workers N``, of all its processes) after the warm-up, after the timed requests and after as many
again (growth that stops is warm-up; growth that goes on would be a leak). Video: a clip made
from the same photo (shifted a few pixels per frame, MPEG-4 Part 2) goes through
:func:`fer_features.inference.video.predict_video`, with and without writing an annotated video.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np


def astronaut(side: int) -> np.ndarray:
    from PIL import Image
    from skimage import data

    return np.asarray(Image.fromarray(data.astronaut()).resize((side, side)))


def jpeg(image: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def tree_rss_mib(pid: int) -> float:
    """Resident memory of ``pid`` and its child processes (``fer serve --workers N``), in MiB."""
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        total += rss_mib(p)
        children = Path(f"/proc/{p}/task/{p}/children")
        todo += [int(c) for c in children.read_text().split()] if children.exists() else []
    return total


def wait_until_up(proc, url: str, cmd: list[str], timeout_s: float = 120) -> None:
    """Wait for ``fer serve`` (``proc``, started by ``cmd``) to answer ``GET url/health``; exit if it died or timed out."""
    import httpx

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            httpx.get(f"{url}/health", timeout=2)
            return
        except httpx.TransportError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"fer serve did not start: {' '.join(cmd)}") from None
            time.sleep(0.2)


def load_test(model: str, side: int, requests: int, concurrency: int, workers: int = 1, max_batch: int = 8) -> dict:
    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    repo = Path(__file__).parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(repo), os.environ.get("PYTHONPATH")]))}
    cmd = [sys.executable, "-m", "fer_features.cli", "serve", "--model", model, "--port", str(port)]
    cmd += ["--log-level", "warning", "--workers", str(workers), "--max-batch", str(max_batch)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    photo = jpeg(astronaut(side))
    try:
        wait_until_up(proc, url, cmd)

        def one(client):
            t = time.perf_counter()
            r = client.post(f"{url}/predict", content=photo, headers={"content-type": "image/jpeg"})
            ok = r.status_code == 200 and len(r.json()["faces"]) == 1
            timing = r.json()["timing"] if r.status_code == 200 else None
            return ok, time.perf_counter() - t, timing

        with httpx.Client(timeout=120, limits=httpx.Limits(max_connections=concurrency)) as client:
            with ThreadPoolExecutor(concurrency) as pool:  # warm-up of every worker
                list(pool.map(lambda _: one(client), range(10 * workers)))
            before = tree_rss_mib(proc.pid)
            t0 = time.perf_counter()
            with ThreadPoolExecutor(concurrency) as pool:
                results = list(pool.map(lambda _: one(client), range(requests)))
            wall = time.perf_counter() - t0
            after = tree_rss_mib(proc.pid)
            with ThreadPoolExecutor(concurrency) as pool:  # as many again, for memory only: does it keep growing?
                again = list(pool.map(lambda _: one(client), range(requests)))
            after_again = tree_rss_mib(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    latency = np.array([dt for _, dt, _ in results]) * 1000
    timings = [p for _, _, p in results if p is not None]
    predict_ms = np.array([p["predict_ms"] for p in timings])
    batch = np.array([p.get("batch_size", 1) for p in timings])
    return {
        "image": f"astronaut {side}x{side} JPEG ({len(photo) // 1024} KiB)",
        "requests": requests,
        "concurrency": concurrency,
        "workers": workers,
        "max_batch": max_batch,
        "mean_batch": round(float(batch.mean()), 2),
        "errors": sum(not ok for ok, _, _ in results + again),
        "p50_ms": round(float(np.percentile(latency, 50)), 1),
        "p90_ms": round(float(np.percentile(latency, 90)), 1),
        "p99_ms": round(float(np.percentile(latency, 99)), 1),
        "predict_p50_ms": round(float(np.median(predict_ms)), 1),
        "throughput_rps": round(requests / wall, 2),
        "rss_before_mib": round(before, 1),
        "rss_after_mib": round(after, 1),
        "rss_after_twice_mib": round(after_again, 1),
    }


def video_fps(model_path: str, side: int, frames: int) -> dict:
    import cv2

    from fer_features.inference.video import predict_video
    from fer_features.persist.files import load_model

    model = load_model(model_path)
    big = astronaut(side + 40)
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip.mp4"
        writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (side, side))
        for i in range(frames):
            dx, dy = 20 + int(round(12 * np.sin(i / 4))), 20 + (i % 5) - 2
            writer.write(np.ascontiguousarray(big[dy : dy + side, dx : dx + side, ::-1]))
        writer.release()
        predict_video(model, clip, max_frames=8)  # warm-up: dlib models, caches
        plain = predict_video(model, clip, out_csv=Path(tmp) / "p.csv")
        annotated = predict_video(model, clip, out_csv=Path(tmp) / "p.csv", annotate_path=Path(tmp) / "a.mp4")
    return {
        "clip": f"{frames} frames of {side}x{side} (astronaut, shifted), MPEG-4",
        "faces": plain.faces,
        "fps_csv_only": plain.fps,
        "fps_with_annotated_video": annotated.fps,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models/fer-default.skops")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--workers", type=int, default=1, help="fer serve --workers")
    parser.add_argument("--max-batch", type=int, default=8, help="fer serve --max-batch")
    parser.add_argument("--sides", default="320,512", help="photo sizes for the load test, comma-separated")
    parser.add_argument("--video-side", type=int, default=480)
    parser.add_argument("--video-frames", type=int, default=60, help="0: no video measurement")
    parser.add_argument("--out")
    args = parser.parse_args()

    load = [load_test(args.model, int(s), args.requests, args.concurrency, args.workers, args.max_batch) for s in args.sides.split(",")]
    for row in load:
        print(json.dumps(row), flush=True)
    video = video_fps(args.model, args.video_side, args.video_frames) if args.video_frames > 0 else None
    print(json.dumps(video), flush=True)
    machine = f"{os.cpu_count()} CPU cores, no GPU, {platform.platform()}"
    machine += f"; load average at the end {os.getloadavg()[0]:.1f}"
    head = (
        "| photo | requests (concurrent) | workers | max batch (mean) | errors | p50 ms | p90 ms | p99 ms | detect + classify p50 ms | requests/s "
        "| server RSS (MiB): after warm-up → after the requests → after as many again |"
    )
    rows = [
        f"| {r['image']} | {r['requests']} ({r['concurrency']}) | {r['workers']} | {r['max_batch']} ({r['mean_batch']}) | {r['errors']} | {r['p50_ms']} | {r['p90_ms']} "
        f"| {r['p99_ms']} | {r['predict_p50_ms']} | {r['throughput_rps']} "
        f"| {r['rss_before_mib']} → {r['rss_after_mib']} → {r['rss_after_twice_mib']} |"
        for r in load
    ]
    text = "\n".join([head, "|" + " --- |" * 11, *rows]) + "\n"
    if video:
        text += (
            "\n| video | faces | frames/s (CSV) | frames/s (CSV + annotated video) |\n| --- | --- | --- | --- |\n"
            f"| {video['clip']} | {video['faces']} | {video['fps_csv_only']} | {video['fps_with_annotated_video']} |\n"
        )
    text += f"\nModel `{args.model}`; {machine}.\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
