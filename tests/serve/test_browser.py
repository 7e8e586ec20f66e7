"""The demo page of ``fer serve`` in real headless Chromium (Debian's ``chromium`` driven by
Playwright), with Chromium's fake camera playing a .y4m made from skimage's astronaut.

Screenshots of the three tabs go to the test's tmp folder and, when ``$FER_SCREENSHOTS`` names a
folder, there too. Needs ``/usr/bin/chromium`` (``apt-get install chromium``, done by ``.ci/run``)
and the ``playwright`` Python package; no browser is downloaded.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from fer_features.config import EMOTIONS

CHROMIUM = Path(os.environ.get("FER_CHROMIUM", "/usr/bin/chromium"))

pytestmark = [
    pytest.mark.skipif(
        not CHROMIUM.is_file(), reason=f"{CHROMIUM} not found: `apt-get install chromium` (.ci/run does)"
    ),
]


def write_y4m(path: Path, rgb: np.ndarray, frames: int = 4) -> Path:
    """Write ``rgb`` as a still YUV4MPEG2 clip (4:2:0, full-range BT.601, what Chromium's fake camera reads).

    Parameters
    ----------
    path : Path
    rgb : ndarray of shape (height, width, 3), dtype uint8
        Even height and width.
    frames : int, default=4
        Identical frames; Chromium loops the file.
    """
    from PIL import Image

    h, w = rgb.shape[:2]
    ycc = np.asarray(Image.fromarray(rgb).convert("YCbCr"), np.float32)
    y = ycc[..., 0].round().astype(np.uint8)
    chroma = [ycc[..., c].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3)).round().astype(np.uint8) for c in (1, 2)]
    frame = b"FRAME\n" + y.tobytes() + chroma[0].tobytes() + chroma[1].tobytes()
    path.write_bytes(f"YUV4MPEG2 W{w} H{h} F10:1 Ip A1:1 C420jpeg\n".encode() + frame * frames)
    return path


def test_demo_page_upload_webcam_facematch(live_server, astronaut_png, tmp_path):
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="the playwright package is not installed (it is in requirements.lock)"
    )
    from skimage import data

    y4m = write_y4m(tmp_path / "astronaut.y4m", data.astronaut())
    shots = [tmp_path / "screenshots"]
    if os.environ.get("FER_SCREENSHOTS"):
        shots.append(Path(os.environ["FER_SCREENSHOTS"]))
    for folder in shots:
        folder.mkdir(parents=True, exist_ok=True)

    def screenshot(page, name: str) -> None:
        page.screenshot(path=str(shots[0] / name), full_page=True)
        for folder in shots[1:]:
            shutil.copy(shots[0] / name, folder / name)

    args = [
        "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync",
        "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-video-capture={y4m}",
    ]  # fmt: skip
    with sync_api.sync_playwright() as pw:
        # Playwright gives every launch a fresh temporary profile (user-data-dir).
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=args)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
            page.set_default_timeout(30_000)
            page.goto(live_server)
            page.wait_for_selector("body[data-ready=true]")
            assert "hog → logreg" in page.inner_text("#model-info")

            # Upload: the astronaut photo → one face drawn on the canvas and seven probability bars
            page.set_input_files("#file-input", str(astronaut_png))
            page.wait_for_selector("#upload-status[data-state=done]")
            assert page.get_attribute("#upload-faces", "data-faces") == "1"
            assert page.locator("#upload-faces .bar").count() == len(EMOTIONS)
            size = page.evaluate("(c => [c.width, c.height])(document.getElementById('upload-canvas'))")
            assert size == [512, 512]
            # the canvas holds the photo with a yellow box (255, 200, 0) drawn on it
            yellow = page.evaluate(
                """() => { const c = document.getElementById('upload-canvas');
                   const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let n = 0;
                   for (let i = 0; i < d.length; i += 4)
                     if (d[i] > 240 && Math.abs(d[i+1] - 200) < 12 && d[i+2] < 20) n++;
                   return n; }"""
            )
            assert yellow > 200, yellow
            screenshot(page, "upload.png")

            # Webcam: live predictions from the fake camera, fps shown
            page.click("#tab-webcam")
            page.click("#webcam-start")
            page.wait_for_function("Number(document.getElementById('webcam-label').dataset.frames || 0) >= 3")
            assert page.inner_text("#webcam-label").strip().lower() in EMOTIONS  # a face, not "no face"
            assert "frames/s" in page.inner_text("#webcam-fps")
            assert page.locator("#webcam-bars .bar").count() == len(EMOTIONS)
            screenshot(page, "webcam.png")

            # FaceMatch: a 2-second round yields a score 0-100 and the running total
            page.click("#tab-facematch")
            page.fill("#fm-seconds", "2")
            page.click("#fm-start")
            page.wait_for_selector("#fm-score[data-score]")
            score = int(page.get_attribute("#fm-score", "data-score"))
            assert 0 <= score <= 100
            assert page.inner_text("#fm-total") == str(score) and page.inner_text("#fm-rounds") == "1"
            target = page.inner_text("#fm-target").strip().lower()
            assert target in EMOTIONS
            history = page.locator("#fm-history li").all_inner_texts()
            assert len(history) == 1 and history[0].lower().startswith(target)
            assert not history[0].endswith("(0 frames)"), history
            screenshot(page, "facematch.png")
            assert not errors, errors
        finally:
            browser.close()
    for name in ("upload.png", "webcam.png", "facematch.png"):
        assert (shots[0] / name).stat().st_size > 10_000
