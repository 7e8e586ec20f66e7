"""The Recognizer façade: every input kind, the no-face and unreadable rows, video, progress."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from fer_features import Recognizer
from fer_features.datasets import EMOTIONS
from fer_features.predict import FRAME_COLUMNS, predict_paths

P_COLUMNS = [f"p_{c}" for c in sorted(EMOTIONS)]


@pytest.fixture(scope="module")
def rec(tiny_model_path):
    return Recognizer(tiny_model_path, progress=False)


@pytest.fixture(scope="module")
def crop_files(tmp_path_factory, patterns):
    folder = tmp_path_factory.mktemp("crops")
    paths = []
    for i in (0, 25, 50):
        path = folder / f"crop{i:02d}.png"
        Image.fromarray(patterns[0][i]).save(path)
        paths.append(path)
    return folder, paths


def check_columns(frame: pd.DataFrame) -> None:
    assert list(frame.columns) == [*FRAME_COLUMNS, *P_COLUMNS, "error"]
    assert str(frame["face"].dtype) == "Int64" and str(frame["left"].dtype) == "Int64"


def test_the_readme_example_prints_a_dataframe(tiny_model_path, astronaut_png, monkeypatch):
    monkeypatch.setenv("FER_MODEL", str(tiny_model_path))
    script = f"from fer_features import Recognizer; print(Recognizer().predict({str(astronaut_png)!r}))"
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("   image") and "error" in proc.stdout  # the DataFrame, however wide the terminal
    assert f"[{1} rows x {9 + 7 + 1} columns]" in proc.stdout or "astronaut.png" in proc.stdout


def test_a_photo_gives_one_row_per_face(rec, astronaut_png, tiny_model):
    frame = rec.predict(astronaut_png)
    check_columns(frame)
    (expected,) = predict_paths(tiny_model, [astronaut_png])
    assert len(frame) == len(expected.faces) >= 1
    first = frame.iloc[0]
    assert first["path"] == str(astronaut_png) and first["face"] == 0 and pd.isna(first["error"])
    face = expected.faces[0]
    assert (first["left"], first["top"], first["right"], first["bottom"]) == face.box
    assert first["label"] == face.label and first["detection_score"] == pytest.approx(face.detection_score)
    assert [first[f"p_{c}"] for c in sorted(EMOTIONS)] == pytest.approx([face.probabilities[c] for c in sorted(EMOTIONS)])


def test_a_photo_without_a_face_keeps_its_row(rec, faceless_png):
    frame = rec.predict(faceless_png)
    assert len(frame) == 1
    row = frame.iloc[0]
    assert row["path"] == str(faceless_png) and pd.isna(row["face"]) and pd.isna(row["label"]) and pd.isna(row["error"])
    assert frame[P_COLUMNS].isna().all(axis=None)


def test_an_unreadable_file_gives_a_row_with_its_error(rec, tmp_path, faceless_png):
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    frame = rec.predict([bad, faceless_png, tmp_path / "ghost.jpg"])
    assert list(frame["image"]) == [0, 1, 2]
    assert "bad.png" in frame.loc[0, "error"] and pd.isna(frame.loc[0, "face"])
    assert pd.isna(frame.loc[1, "error"])
    assert "no such file" in frame.loc[2, "error"]


def test_a_folder_and_a_list_of_paths(rec, crop_files):
    folder, paths = crop_files
    by_folder = rec.predict(folder)
    by_list = rec.predict([str(p) for p in paths])
    assert list(by_folder["path"]) == [str(p) for p in paths]
    pd.testing.assert_frame_equal(by_folder, by_list)
    assert by_folder["face"].tolist() == [0, 0, 0] and by_folder["detection_score"].isna().all()


def test_a_batch_of_crops_is_classified_directly(rec, patterns, tiny_model):
    X, _ = patterns
    frame = rec.predict(X[:30])
    assert len(frame) == 30 and frame["path"].isna().all() and list(frame["image"]) == list(range(30))
    np.testing.assert_allclose(frame[P_COLUMNS].to_numpy(), tiny_model.predict_proba(X[:30]), atol=1e-4)
    assert list(frame["label"]) == list(tiny_model.predict(X[:30]))
    assert (frame["right"] == 48).all() and (frame["left"] == 0).all()


def test_batches_do_not_change_the_answer(tiny_model_path, patterns):
    X, _ = patterns
    one = Recognizer(tiny_model_path, batch_size=1, progress=False).predict(X[:12])
    many = Recognizer(tiny_model_path, batch_size=64, progress=False).predict(X[:12])
    pd.testing.assert_frame_equal(one, many)


def test_an_image_array(rec, astronaut_png, patterns):
    rgb = np.asarray(Image.open(astronaut_png).convert("RGB"))
    from_array = rec.predict(rgb)
    from_file = rec.predict(astronaut_png)
    assert from_array["path"].isna().all()
    pd.testing.assert_frame_equal(from_array.drop(columns="path"), from_file.drop(columns="path"))
    grey_crop = rec.predict(patterns[0][0])  # (48, 48): one crop
    assert len(grey_crop) == 1 and grey_crop.loc[0, "face"] == 0
    several = rec.predict(np.stack([rgb, rgb]))  # (n, height, width, 3)
    assert sorted(set(several["image"])) == [0, 1]


def test_bad_inputs_say_what_is_expected(rec, tiny_model_path):
    with pytest.raises(ValueError, match="48x48 crops"):
        rec.predict(np.zeros((2, 3, 30, 30), np.uint8))
    with pytest.raises(TypeError, match="paths, folders or image arrays"):
        rec.predict(42)
    with pytest.raises(ValueError, match="unknown face detector"):
        Recognizer(tiny_model_path, detector="haar")


def test_a_loaded_model_and_a_missing_one(tiny_model, tmp_path):
    from fer_features.persist import ModelError

    assert Recognizer(tiny_model).classes == sorted(EMOTIONS)
    with pytest.raises(ModelError, match="fer train"):
        Recognizer(tmp_path / "none.joblib")


def test_progress_bar_on_and_off(tiny_model_path, patterns, capsys):
    X, _ = patterns
    Recognizer(tiny_model_path, batch_size=4, progress=True).predict(X[:12])
    Recognizer(tiny_model_path, batch_size=4).predict(X[:12], progress=False)
    # both run to the end; the bar goes to stderr only, never into stdout
    assert capsys.readouterr().out == ""


def test_predict_video_gives_the_rows_per_frame(rec, tmp_path):
    cv2 = pytest.importorskip("cv2")
    from skimage import data

    photo = np.ascontiguousarray(np.asarray(Image.fromarray(data.astronaut()).resize((320, 320)))[..., ::-1])
    path = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (320, 320))
    for _ in range(4):
        writer.write(photo)
    for _ in range(2):
        writer.write(np.full((320, 320, 3), 128, np.uint8))
    writer.release()
    frame = rec.predict_video(path, every=2)
    summary = frame.attrs["summary"]
    assert summary.frames == 6 and summary.analysed == 3
    assert list(frame.columns[:3]) == ["frame", "time_s", "n_faces"]
    assert sorted(set(frame["frame"])) == [0, 2, 4]
    assert frame.loc[frame["frame"] == 4, "face"].isna().all()  # the grey frame: one row, no face
    assert (frame.loc[frame["frame"] == 0, "label"].notna()).all()
    assert frame["time_s"].tolist()[-1] == pytest.approx(0.4)


def test_a_recognizer_shared_by_four_threads_answers_as_serial_calls(astronaut_png, faceless_png):
    """A web application's thread pool shares one Recognizer: the same rows as one call after another."""
    from concurrent.futures import ThreadPoolExecutor

    rec = Recognizer("default")
    rng = np.random.default_rng(0)
    inputs = [str(astronaut_png), str(faceless_png), rng.integers(0, 256, (3, 48, 48), dtype=np.uint8),
              rng.integers(0, 256, (100, 48, 48), dtype=np.uint8)]  # photos; a few crops (1 thread); a batch (every core)
    serial = [rec.predict(x) for x in inputs]
    with ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(lambda k: rec.predict(inputs[k % len(inputs)]), range(32)))
    for k, frame in enumerate(parallel):
        pd.testing.assert_frame_equal(frame, serial[k % len(inputs)])
