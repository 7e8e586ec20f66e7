"""`fer robustness`: each shift does what it says, deterministically; the table's rows and columns; the CLI.

Synthetic crops and the tiny pattern model only (no real data): accuracy lives in the benchmark.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pandas as pd
import pytest
from conftest import assert_user_error, fer, pattern_images, pixel_string, write_csv

from fer_features.benchmark import robustness as R
from fer_features.benchmark import shifts as S
from fer_features.config import EMOTIONS
from fer_features.data.fer2013 import FERDataset
from fer_features.data.ferplus import FERPLUS_COLUMNS

CROP_SHIFTS = [name for name, spec in S.SHIFTS.items() if spec.apply is not None]


@pytest.fixture(scope="module")
def crops() -> np.ndarray:
    """16 smooth-ish synthetic 48x48 faces with texture (pattern images)."""
    X, _ = pattern_images(per_class=3, seed=1)
    return X[:16]


def high_frequency(X: np.ndarray, cycles: float = 8) -> float:
    """Spectral power above ``cycles`` cycles per crop (the detail a 16-pixel face cannot hold)."""
    power = np.abs(np.fft.fft2(X.astype(np.float64) - X.mean(axis=(1, 2), keepdims=True))) ** 2
    f = np.fft.fftfreq(X.shape[1]) * X.shape[1]
    radius = np.hypot(f[:, None], f[None, :])
    return float(power[:, radius > cycles].mean())


def change(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b).mean())


# --- every crop shift -------------------------------------------------------------------------
@pytest.mark.parametrize("name", CROP_SHIFTS)
def test_shift_keeps_shape_dtype_and_is_deterministic(crops, name):
    for severity in S.SHIFTS[name].severities:
        a = S.apply_shift(crops, name, severity, seed=3)
        assert a.shape == crops.shape and a.dtype == np.uint8
        assert np.array_equal(a, S.apply_shift(crops, name, severity, seed=3))
        assert not np.array_equal(a, crops), f"{name} {severity} changed nothing"
    assert np.array_equal(S.apply_shift(crops, name, 0), crops)


@pytest.mark.parametrize("name", ["rotation", "brightness", "gamma", "noise", "sunglasses", "hand"])
def test_random_shifts_depend_on_the_seed(crops, name):
    assert not np.array_equal(S.apply_shift(crops, name, 2, seed=0), S.apply_shift(crops, name, 2, seed=1))


@pytest.mark.parametrize("name", CROP_SHIFTS)
def test_severity_makes_the_change_larger(crops, name):
    changes = [change(S.apply_shift(crops, name, s), crops) for s in S.SHIFTS[name].severities]
    assert changes == sorted(changes), changes


@pytest.mark.parametrize("name", ["blur", "low_resolution"])
def test_blur_and_low_resolution_remove_high_frequencies(crops, name):
    energy = [high_frequency(crops)] + [high_frequency(S.apply_shift(crops, name, s)) for s in S.SHIFTS[name].severities]
    assert all(a > b for a, b in zip(energy, energy[1:])), energy


def test_noise_adds_high_frequencies_and_contrast_removes_spread(crops):
    assert high_frequency(S.apply_shift(crops, "noise", 1)) > high_frequency(crops)
    spreads = [crops.std()] + [S.apply_shift(crops, "contrast", s).std() for s in (1, 2, 3)]
    assert all(a > b for a, b in zip(spreads, spreads[1:])), spreads


def test_rotation_by_zero_is_identity_and_by_90_is_a_quarter_turn(crops):
    rng = np.random.default_rng(0)
    assert np.array_equal(S.rotate(crops, 0, rng), crops)
    turned = S.rotate(crops, 90, np.random.default_rng(0))
    for t, c in zip(turned, crops):  # sign drawn per face: either way round, exact on the pixel grid
        assert np.array_equal(t, np.rot90(c, 1)) or np.array_equal(t, np.rot90(c, -1))


def test_sunglasses_paint_the_eye_boxes_dark_and_nothing_else(crops):
    shifted = S.apply_shift(crops, "sunglasses", 2, seed=5)
    mask = S.sunglasses_mask(len(crops), S.SHIFTS["sunglasses"].levels[1], S.shift_rng(5, "sunglasses", 2))
    assert (shifted[mask] == 20).all()
    assert np.array_equal(shifted[~mask], crops[~mask])
    assert mask[:, 19, 15].all() and mask[:, 19, 33].all()  # over both of FER2013's eyes
    assert mask.sum(axis=(1, 2)).min() == 2 * 13 * 9


def test_hand_covers_mouth_and_chin_with_skin_grey(crops):
    shifted = S.apply_shift(crops, "hand", 3, seed=5)
    mask = S.hand_mask(len(crops), S.SHIFTS["hand"].levels[2], S.shift_rng(5, "hand", 3))
    assert np.array_equal(shifted[~mask], crops[~mask])
    assert shifted[mask].min() >= 110 and shifted[mask].max() <= 200
    assert mask[:, 38, 24].all() and not mask[:, 19, :].any()  # mouth covered, eyes free


def test_apply_shift_refuses_bad_input(crops):
    with pytest.raises(R.RobustnessError, match="unknown shift 'fog'.*valid shifts: framing"):
        S.apply_shift(crops, "fog", 1)
    with pytest.raises(R.RobustnessError, match="severities 1 to 2, got 3"):
        S.apply_shift(crops, "low_resolution", 3)
    with pytest.raises(R.RobustnessError, match="framing_photos"):
        S.apply_shift(crops, "framing", 1)
    with pytest.raises(R.RobustnessError, match=r"uint8.*float64"):
        S.apply_shift(crops.astype(float), "blur", 1)
    assert S.parse_shifts("blur, hand,blur") == ["blur", "hand"]
    assert S.parse_shifts(None) == list(S.SHIFTS)


# --- framing: photos through the detector -----------------------------------------------------
def test_framing_photos_paste_the_face_at_a_seeded_place(crops):
    photos, boxes = S.framing_photos(crops[:3], (96, 200), np.random.default_rng(0))
    again, boxes2 = S.framing_photos(crops[:3], (96, 200), np.random.default_rng(0))
    assert np.array_equal(boxes, boxes2) and all(np.array_equal(a, b) for a, b in zip(photos, again))
    for photo, (left, top, right, bottom) in zip(photos, boxes):
        assert photo.shape == (200, 200) and photo.dtype == np.uint8
        assert right - left == 96 and bottom - top == 96 and 0 <= left and right <= 200 and 0 <= top and bottom <= 200
    with pytest.raises(ValueError, match="does not fit"):
        S.framing_photos(crops[:1], (300, 200), np.random.default_rng(0))


@pytest.fixture(scope="module")
def astronaut_crop() -> np.ndarray:
    """The photo pipeline's crop of the astronaut's face (a real face, from skimage, not FER2013)."""
    from skimage import data

    return R.pipeline_crops([data.astronaut()])


def test_framing_goes_through_the_detector(astronaut_crop, tiny_model):
    from fer_features.inference.recognizer import Recognizer

    assert astronaut_crop.shape == (1, 48, 48)
    faces = np.repeat(astronaut_crop, 2, axis=0)
    photos, boxes = S.framing_photos(faces, S.SHIFTS["framing"].levels[0], np.random.default_rng(0))
    labels = R.predict_framing(Recognizer(tiny_model, progress=False), photos, boxes)
    assert (labels != R.NO_FACE).all()
    blank = [np.full((320, 320), 128, np.uint8)]
    assert R.predict_framing(Recognizer(tiny_model, progress=False), blank, boxes[:1])[0] == R.NO_FACE


def test_framing_stats_measure_eyes_in_crop_pixels(astronaut_crop):
    stats = R.framing_stats({"astronaut": astronaut_crop, "none": np.full((1, 48, 48), 128, np.uint8)})
    assert list(stats["set"]) == ["astronaut", "none"] and list(stats["measured"]) == [1, 0]
    row = stats.iloc[0]
    assert 10 < row["left_eye_x"] < row["right_eye_x"] < 38 and 12 < row["left_eye_y"] < 24


# --- the table ----------------------------------------------------------------------------------
def pattern_dataset(per_class: int = 3) -> FERDataset:
    X, labels = pattern_images(per_class=2 * per_class, seed=2)
    y = np.array([EMOTIONS.index(e) for e in labels])
    usage = np.array(["PublicTest", "PrivateTest"] * (len(y) // 2))
    return FERDataset(X, y, usage, np.array([f"p{i}" for i in range(len(y))]), "patterns", "x")


def test_scores_count_no_face_as_wrong():
    acc, bal = R.scores(np.array(["happy", "happy", "sad", "sad"]), np.array(["happy", R.NO_FACE, "sad", "happy"]))
    assert acc == 0.5 and bal == 0.5
    acc, bal = R.scores(np.array(["happy", "happy", "happy", "sad"]), np.array(["happy"] * 3 + [R.NO_FACE]))
    assert acc == 0.75 and bal == 0.5  # recall 1 and 0, over the classes present


def test_run_robustness_rows_columns_and_summary(tiny_model):
    shifts = ["blur", "low_resolution", "framing"]
    frame = R.run_robustness(tiny_model, pattern_dataset(), shifts=shifts, framing_n=4)
    assert tuple(frame.columns) == R.COLUMNS
    per_split = 1 + 3 + 2 + 3
    assert len(frame) == 2 * per_split and list(frame["split"].unique()) == list(S.SPLITS)
    assert list(frame["shift"].unique()) == ["clean", *shifts]
    framing = frame[frame["shift"] == "framing"]
    assert (framing["n"] == 4).all() and framing["found"].between(0, 1).all()
    assert frame["accuracy"].between(0, 1).all() and frame["balanced_accuracy"].between(0, 1).all()
    clean = frame[frame["shift"] == "clean"].iloc[0]
    assert clean["accuracy"] == np.mean(tiny_model.predict(pattern_dataset().split("PublicTest")[0]) == pattern_dataset().split("PublicTest")[1])

    summary = R.summarize(frame)
    assert list(summary.columns) == ["split", "shift", "severities", "accuracy", "balanced_accuracy"]
    public = summary[summary["split"] == "PublicTest"].set_index("shift")
    assert list(public.index) == ["clean", *shifts, "mean"]
    rows = frame[frame["split"] == "PublicTest"]
    blur = rows[rows["shift"] == "blur"]["accuracy"].mean()
    assert public.loc["blur", "accuracy"] == pytest.approx(blur)
    assert public.loc["mean", "accuracy"] == pytest.approx(public.loc[shifts, "accuracy"].mean())
    assert public.loc["low_resolution", "severities"] == 2


def test_run_robustness_is_deterministic_and_refuses_bad_input(tiny_model):
    data = pattern_dataset()
    a = R.run_robustness(tiny_model, data, splits=["PublicTest"], shifts="noise,hand", framing_n=0)
    b = R.run_robustness(tiny_model, data, splits=["PublicTest"], shifts="noise,hand", framing_n=0)
    pd.testing.assert_frame_equal(a.drop(columns="seconds"), b.drop(columns="seconds"))
    with pytest.raises(R.RobustnessError, match="unknown split 'Training'"):
        R.run_robustness(tiny_model, data, splits=["Training"])
    with pytest.raises(R.RobustnessError, match="unknown shift"):
        R.run_robustness(tiny_model, data, shifts=["fog"])


def test_card_entry_is_added_and_the_rest_kept(tiny_model, tmp_path):
    frame = R.run_robustness(tiny_model, pattern_dataset(), shifts=["blur"], framing_n=0)
    card = tmp_path / "m.json"
    card.write_text(json.dumps({"name": "m", "metrics": {"PublicTest": {"accuracy": 0.5}}}))
    R.add_to_card(card, frame, command="fer robustness", settings={"seed": 0})
    saved = json.loads(card.read_text())
    assert saved["name"] == "m" and saved["metrics"]["PublicTest"]["accuracy"] == 0.5
    entry = saved["robustness"]
    assert set(entry["PublicTest"]) == {"clean", "shifted_mean", "shifts"} and set(entry["PublicTest"]["shifts"]) == {"blur"}
    assert entry["command"] == "fer robustness" and "cpu" in entry["machine"]


def test_card_keeps_one_entry_per_label_set(tiny_model, tmp_path):
    frame = R.run_robustness(tiny_model, pattern_dataset(), shifts=["blur"], framing_n=0, splits=["PublicTest"])
    card = tmp_path / "m.json"
    card.write_text(json.dumps({"name": "m"}))
    R.add_to_card(card, frame, settings={"labels": "FER2013"})
    R.add_to_card(card, frame.assign(accuracy=0.0), labels="FERPlus", settings={"labels": "FERPlus"})
    saved = json.loads(card.read_text())
    assert saved["robustness"]["PublicTest"]["clean"]["accuracy"] == round(float(frame["accuracy"].iloc[0]), 4)
    assert saved["robustness_ferplus"]["PublicTest"]["clean"]["accuracy"] == 0.0  # the FERPlus run did not overwrite FER2013's
    with pytest.raises(R.RobustnessError, match="unknown label set 'AffectNet'"):
        R.add_to_card(card, frame, labels="AffectNet")


def test_label_set_follows_the_data_format(tiny_csv, tmp_path):
    votes = tmp_path / "fer2013new.csv"
    votes.write_text("Usage,Image name," + ",".join(FERPLUS_COLUMNS) + "\n")
    assert R.label_set(tiny_csv) == "FER2013" and R.label_set(votes) == "FERPlus" and R.label_set(tmp_path) == "FERPlus"
    assert R.label_set(tiny_csv, "photos") == "photos" and R.label_set(votes, "fer2013") == "FER2013"
    assert set(R.CARD_KEYS) == {"FER2013", "FERPlus", "photos"}
    with pytest.raises(FileNotFoundError, match="missing.csv"):
        R.label_set(tmp_path / "missing.csv")


def test_card_in_the_bundled_models_is_refused(tiny_model):
    from fer_features.persist.bundled import bundled_models_dir
    from fer_features.persist.outputs import OutputError

    frame = R.run_robustness(tiny_model, pattern_dataset(), shifts=["blur"], framing_n=0, splits=["PublicTest"])
    with pytest.raises(OutputError, match="bundled models"):
        R.add_to_card(bundled_models_dir() / "default.json", frame)


# --- the command line ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_csv(tmp_path_factory):
    X, labels = pattern_images(per_class=4, seed=3)
    usage = ["PublicTest", "PrivateTest"] * (len(labels) // 2)
    path = tmp_path_factory.mktemp("rob") / "fer2013.csv"
    return write_csv(path, [(EMOTIONS.index(e), pixel_string(x), u) for x, e, u in zip(X, labels, usage)])


def test_cli_runs_end_to_end_and_writes_json_and_csv(tiny_model_path, tiny_csv, tmp_path):
    out = tmp_path / "rows.json"
    result = fer("robustness", "--model", tiny_model_path, "--data", tiny_csv, "--shift", "blur,hand",
                 "--framing-n", "0", "--out", out)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "PublicTest" in result.output and "all shifts" in result.output
    rows = json.loads(out.read_text())
    assert len(rows) == 2 * (1 + 3 + 3) and set(rows[0]) == set(R.COLUMNS)
    csv = tmp_path / "rows.csv"
    result = fer("robustness", "--model", tiny_model_path, "--data", tiny_csv, "--shift", "jpeg", "--split", "PrivateTest",
                 "--framing-n", "0", "--out", csv, "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["settings"]["splits"] == ["PrivateTest"] and payload["summary"][-1]["shift"] == "mean"
    assert payload["settings"]["labels"] == "FER2013"
    assert len(pd.read_csv(csv)) == 1 + 3


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--shift", "fog"], "unknown shift 'fog'"),
        (["--split", "Training"], "--split Training"),
        (["--out", "rows.txt"], "write a .csv or .json"),
        (["--card", "missing.json"], "no such model card"),
        (["--data", "missing.csv"], "missing.csv"),
        (["--model", "missing.skops"], "missing.skops"),
    ],
)
def test_cli_rejects_bad_input(tiny_model_path, tiny_csv, tmp_path, monkeypatch, args, fragment):
    monkeypatch.chdir(tmp_path)
    options = {"--model": str(tiny_model_path), "--data": str(tiny_csv), "--framing-n": "0"}
    options.update(dict(zip(args[::2], args[1::2])))
    result = fer("robustness", *[x for pair in options.items() for x in pair])
    assert_user_error(result, fragment)


def test_cli_passes_test_time_augmentation_to_a_checkpoint_and_records_it(tiny_csv, tmp_path, monkeypatch):
    pytest.importorskip("torch")
    from conftest import make_checkpoint

    from fer_features.cli import robustness as command
    from fer_features.cnn.checkpoints import save_checkpoint

    path = save_checkpoint({**make_checkpoint(seed=5), "classes": list(EMOTIONS)}, tmp_path / "net.pt")
    seen = []
    real = command.read_model
    monkeypatch.setattr(command, "read_model", lambda *a, **kw: seen.append(kw) or real(*a, **kw))
    result = fer("robustness", "--model", path, "--data", tiny_csv, "--shift", "jpeg", "--split", "PublicTest",
                 "--framing-n", "0", "--tta", "flip", "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert seen[0]["tta"] == "flip" and seen[0]["tta"] == json.loads(result.stdout)["settings"]["tta"]
    assert real(path, tta="flip").tta == "flip"  # and the loader puts it on the model


def test_cli_scores_ferplus_labels_and_cards_them_apart(tiny_model_path, tmp_path):
    """With --data fer2013new.csv the faces are scored against the FERPlus majority: faces whose votes
    are unknown drop out, and the card gets "robustness_ferplus" beside the FER2013 entry."""
    X, labels = pattern_images(per_class=4, seed=3)
    usage = ["PublicTest", "PrivateTest"] * (len(labels) // 2)
    folder = tmp_path / "ferplus"
    folder.mkdir()
    write_csv(folder / "fer2013.csv", [(EMOTIONS.index(e), pixel_string(x), u) for x, e, u in zip(X, labels, usage)])
    column = {"angry": "anger", "happy": "happiness", "sad": "sadness"}
    unknown = {i for i, u in enumerate(usage) if u == "PublicTest"}
    unknown = set(sorted(unknown)[::3])  # a third of PublicTest: unknown, not a face of the 7 classes
    with open(folder / "fer2013new.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["Usage", "Image name", *FERPLUS_COLUMNS])
        for i, (label, u) in enumerate(zip(labels, usage)):
            col = "unknown" if i in unknown else column.get(label, label)
            w.writerow([u, f"fer{i:07d}.png", *[10 if c == col else 0 for c in FERPLUS_COLUMNS]])
    card = tmp_path / "m.json"
    card.write_text(json.dumps({"name": "m", "robustness": {"kept": True}}))
    result = fer("robustness", "--model", tiny_model_path, "--data", folder / "fer2013new.csv", "--shift", "jpeg",
                 "--split", "PublicTest", "--framing-n", "0", "--card", card, "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    clean = next(r for r in payload["rows"] if r["shift"] == "clean")
    assert payload["settings"]["labels"] == "FERPlus" and clean["n"] == usage.count("PublicTest") - len(unknown)
    saved = json.loads(card.read_text())
    assert saved["robustness"] == {"kept": True} and saved["robustness_ferplus"]["settings"]["labels"] == "FERPlus"
