"""``fer predict VIDEO`` (OpenCV reading and writing, per-frame CSV, annotated video) and ``--webcam``'s
messages where there is no camera or display."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from conftest import assert_user_error, fer  # noqa: E402

from fer_features.datasets import EMOTIONS  # noqa: E402
from fer_features.video import CSV_COLUMNS, iter_predictions, open_capture, predict_video  # noqa: E402

N_FACE, N_BLANK, SIDE = 24, 6, 320


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """A 10 fps MPEG-4 clip: 24 frames of the astronaut (320x320) shifted a few pixels each, then 6 grey frames."""
    from PIL import Image
    from skimage import data

    photo = np.asarray(Image.fromarray(data.astronaut()).resize((SIDE + 40, SIDE + 40)))
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (SIDE, SIDE))
    assert writer.isOpened()
    for i in range(N_FACE):
        dx, dy = 20 + int(round(12 * np.sin(i / 4))), 20 + (i % 5) - 2
        writer.write(np.ascontiguousarray(photo[dy : dy + SIDE, dx : dx + SIDE, ::-1]))
    for _ in range(N_BLANK):
        writer.write(np.full((SIDE, SIDE, 3), 128, np.uint8))
    writer.release()
    return path


def read_csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def count_frames(path) -> tuple[int, tuple[int, int]]:
    cap = cv2.VideoCapture(str(path))
    n, shape = 0, None
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        n, shape = n + 1, frame.shape[:2]
    cap.release()
    return n, shape


def test_predict_video_csv_and_annotated_video(clip, tiny_model_path, tmp_path):
    out, annotated = tmp_path / "preds.csv", tmp_path / "out.mp4"
    result = fer("predict", clip, "--model", tiny_model_path, "--out", out, "--annotate", annotated, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["frames"] == summary["analysed"] == N_FACE + N_BLANK
    assert summary["faces"] == N_FACE and summary["labels"]["no face"] == N_BLANK
    assert summary["frames_per_second"] > 0 and summary["video"]["fps"] == pytest.approx(10.0)
    print(f"video: {summary['frames']} frames of {SIDE}x{SIDE}, {summary['frames_per_second']} frames/s")

    rows = read_csv(out)
    assert list(rows[0]) == [*CSV_COLUMNS, *(f"p_{c}" for c in sorted(EMOTIONS))]
    assert [int(r["frame"]) for r in rows] == list(range(N_FACE + N_BLANK))
    for r in rows[:N_FACE]:
        assert r["n_faces"] == "1" and r["face"] == "0" and r["label"] in EMOTIONS
        probs = {c: float(r[f"p_{c}"]) for c in EMOTIONS}
        assert sum(probs.values()) == pytest.approx(1.0, abs=1e-3)
        assert r["label"] == max(probs, key=probs.get)
        left, top, right, bottom = (int(r[k]) for k in ("left", "top", "right", "bottom"))
        assert 60 < left < right < 200 and 0 <= top < bottom < 140  # the face, in the upper middle
        assert float(r["time_s"]) == pytest.approx(int(r["frame"]) / 10.0)
    for r in rows[N_FACE:]:
        assert r["n_faces"] == "0" and r["label"] == "" and r["p_happy"] == ""

    n, shape = count_frames(annotated)
    assert n == N_FACE + N_BLANK and shape == (SIDE, SIDE)
    assert not list(tmp_path.glob(".*partial*"))  # the temporary file was moved into place


def test_every_kth_frame(clip, tiny_model_path, tmp_path):
    out, annotated = tmp_path / "every3.csv", tmp_path / "every3.avi"
    result = fer("predict", clip, "--model", tiny_model_path, "--out", out, "--annotate", annotated, "--every", 3)
    assert result.exit_code == 0, result.output
    assert "frames/s" in result.stdout
    frames = [int(r["frame"]) for r in read_csv(out)]
    assert frames == list(range(0, N_FACE + N_BLANK, 3))
    assert count_frames(annotated)[0] == N_FACE + N_BLANK  # every frame is written, with the latest faces


def test_video_matches_photo_prediction(clip, tiny_model):
    """Batched frames give the same faces as predict_photos on each frame alone."""
    from fer_features.predict import predict_photos

    cap = open_capture(clip)
    got = [(i, frame, faces) for i, frame, faces in iter_predictions(tiny_model, cap, batch_size=4) if i < 6]
    cap.release()
    for _, frame, faces in got:
        assert faces == predict_photos(tiny_model, [frame])[0]
    summary = predict_video(tiny_model, clip, max_frames=5)
    assert summary.frames == 5 and summary.analysed == 5


def test_video_user_errors(clip, tiny_model_path, tmp_path, crop_png_path):
    fake = tmp_path / "fake.mp4"
    fake.write_text("not a video")
    assert_user_error(fer("predict", fake, "--model", tiny_model_path), "fake.mp4", "not a video")
    assert_user_error(fer("predict", tmp_path / "ghost.mp4", "--model", tiny_model_path), "ghost.mp4")
    assert_user_error(fer("predict", clip, "--model", tiny_model_path, "--annotate", tmp_path / "a.png"), "--annotate")
    assert_user_error(fer("predict", crop_png_path, "--model", tiny_model_path, "--out", tmp_path / "p.csv"), "--out")
    assert_user_error(fer("predict", "--model", tiny_model_path), "--webcam")


def test_webcam_without_display_or_camera_is_a_clear_error(tiny_model_path, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    result = fer("predict", "--webcam", "--device", 7, "--model", tiny_model_path)
    assert_user_error(result, "fer serve")
    assert "display" in result.stderr or "camera" in result.stderr


@pytest.fixture
def crop_png_path(tmp_path, patterns):
    from PIL import Image

    path = tmp_path / "crop.png"
    Image.fromarray(patterns[0][0]).save(path)
    return path


def test_webcam_loop_shows_frames_and_stops_on_q(clip, tiny_model, monkeypatch, tmp_path):
    """run_webcam's loop with the clip standing in for the camera and the window calls recorded."""
    import fer_features.video as video

    shown, keys = [], iter([-1, -1, -1, ord("q")])
    monkeypatch.setattr(video, "check_display", lambda: None)
    real_open = video.open_capture
    monkeypatch.setattr(video, "open_capture", lambda source: real_open(clip) if source == 0 else real_open(source))
    monkeypatch.setattr(cv2, "imshow", lambda name, frame: shown.append(frame.shape))
    monkeypatch.setattr(cv2, "waitKey", lambda ms: next(keys))
    monkeypatch.setattr(cv2, "destroyAllWindows", lambda: None)
    summary = video.run_webcam(tiny_model, 0, out_csv=tmp_path / "live.csv")
    assert summary.frames == 4 and len(shown) == 4 and shown[0] == (SIDE, SIDE, 3)
    assert [int(r["frame"]) for r in read_csv(tmp_path / "live.csv")] == [0, 1, 2, 3]


def test_rows_stream_to_the_csv_before_the_end(clip, tiny_model, tmp_path):
    """Each batch's CSV rows are on disk (the CSV's temporary file) while later frames are still unread."""
    out = tmp_path / "rows.csv"
    on_disk = {}

    def look(index, frame, faces):
        if index == 20:  # 2 batches of 8 analysed frames are behind
            (partial,) = tmp_path.glob(".rows.csv.*.tmp")
            on_disk[index] = len(read_csv(partial))
            assert not out.exists()  # the CSV takes its name at the end

    summary = predict_video(tiny_model, clip, out_csv=out, on_frame=look, batch_size=8)
    assert on_disk[20] >= 16  # rows of frames 0-15 at least, written before frame 21 was read
    assert summary.frames == N_FACE + N_BLANK and len(read_csv(out)) >= summary.analysed


def test_recognizer_streams_rows_and_keeps_the_frames_done_when_stopped(clip, tiny_model, tmp_path):
    from fer_features import Recognizer

    rec = Recognizer(tiny_model)
    whole = rec.predict_video(clip)
    stream = rec.predict_video(clip, stream=True, out_csv=tmp_path / "all.csv")
    rows = list(stream)
    assert [r["frame"] for r in rows] == whole["frame"].tolist()
    assert [r["label"] for r in rows] == [None if v is None or v != v else v for v in whole["label"]]  # NaN: no face
    assert stream.summary.frames == N_FACE + N_BLANK and stream.summary.seconds > 0
    assert len(read_csv(tmp_path / "all.csv")) == len(rows)
    early = rec.predict_video(clip, stream=True, out_csv=tmp_path / "early.csv")
    for row in early:  # a caller that stops early gets the CSV of the frames done
        if row["frame"] == 5:
            break
    assert [int(r["frame"]) for r in read_csv(tmp_path / "early.csv")] == list(range(6))
    with pytest.raises(FileNotFoundError):
        rec.predict_video(tmp_path / "missing.mp4", stream=True)  # at the call, not at the first row
