"""--data with FERPlus and photo folders through the CLI; fer2013 inputs unchanged; bad input → exit code 2."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from conftest import assert_user_error, fer, pattern_images, pixel_string, write_csv
from PIL import Image

from fer_features.config import EMOTIONS
from fer_features.data.ferplus import FERPLUS_COLUMNS


def ferplus_pair(folder, per_class=4):
    """A FERPlus pair whose faces are the learnable synthetic patterns; votes unanimous per class,
    contempt given to the 'flat' pattern's images in half the rows."""
    X, labels = pattern_images(per_class=per_class * 3, seed=2)
    folder.mkdir(parents=True)
    usages = np.tile(["Training", "Training", "PublicTest", "PrivateTest"], len(X) // 4 + 1)[: len(X)]
    write_csv(folder / "fer2013.csv", [(EMOTIONS.index(label), pixel_string(x), u) for x, label, u in zip(X, labels, usages)])
    column = {"angry": "anger", "happy": "happiness", "sad": "sadness"}
    with open(folder / "fer2013new.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["Usage", "Image name", *FERPLUS_COLUMNS])
        for i, (label, usage) in enumerate(zip(labels, usages)):
            col = "contempt" if label == "neutral" and i % 2 else column.get(label, label)
            w.writerow([usage, f"fer{i:07d}.png", *[10 if c == col else 0 for c in FERPLUS_COLUMNS]])
    return folder / "fer2013new.csv"


def test_train_and_evaluate_on_ferplus_8_classes(tmp_path):
    path = ferplus_pair(tmp_path / "ferplus")
    out = tmp_path / "m.skops"
    result = fer("train", "--data", path, "--classes", "8", "--features", "hog", "--clf", "logreg", "--pca", "0", "--n-jobs", "1", "--out", out)
    assert result.exit_code == 0, result.output
    card = json.loads(out.with_suffix(".json").read_text())
    assert "contempt" in card["classes"] and card["data"]["counts"]["Training"]["contempt"] > 0
    result = fer("evaluate", out, "--data", path.parent, "--format", "ferplus", "--classes", "8", "--json")
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert metrics["labels"][-1] == "contempt" and len(metrics["confusion_matrix"]) == 8
    result = fer("data", "inspect", path, "--label-mode", "probability", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["classes"] == list(EMOTIONS)


def test_fer2013_inputs_unchanged(make_fer):
    from fer_features.data.fer2013 import load_fer2013
    from fer_features.data.sources import load_data

    src = make_fer(per_class=1)
    for path in (src.zip, src.folder, src.csv):
        got, want = load_data(path, skip_bad=False), load_fer2013(path)
        assert got.fingerprint == want.fingerprint and got.names.tolist() == want.names.tolist()


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--format", "photos"], "needs a folder"),
        (["--format", "ferplus"], "fer2013new.csv"),
        (["--classes", "9"], "9"),
    ],
)
def test_bad_data_options(make_fer, tmp_path, args, fragment):
    src = make_fer(per_class=1)
    result = fer("train", "--data", src.csv, "--out", tmp_path / "m.skops", *args)
    assert result.exit_code == 2, result.output
    if "--classes" not in args:
        assert_user_error(result, fragment)


def test_photo_folder_with_unknown_classes_is_a_user_error(tmp_path):
    for name in ("happy", "Bored"):
        (tmp_path / name).mkdir()
        Image.fromarray(np.zeros((120, 100, 3), np.uint8)).save(tmp_path / name / "a.jpg")
    assert_user_error(fer("data", "inspect", tmp_path, "--n-jobs", "1"), "unknown emotion folder(s) 'Bored'")


def test_inspect_photo_folder(tmp_path, astronaut_png, faceless_png):
    import shutil

    root = tmp_path / "photos"
    for cls, src in (("happiness", astronaut_png), ("neutral", faceless_png)):
        (root / cls).mkdir(parents=True)
        shutil.copy(src, root / cls)
    result = fer("data", "inspect", root, "--n-jobs", "1", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["n_images"] == 1 and report["counts"]["Training"]["happy"] == 1
    assert report["photo_problems"]["photos"] == 2 and report["photo_problems"]["no_face"] == 1
    assert "1 faces from 2 photos; left out: no face 1" in result.stderr


def test_benchmark_on_ferplus_8_classes(tmp_path):
    path = ferplus_pair(tmp_path / "ferplus")
    result = fer("benchmark", "--data", path, "--classes", "8", "--features", "hog", "--clf", "logreg", "--no-baseline",
                 "--pca", "0", "--n-jobs", "1", "--cache-dir", tmp_path / "cache", "--results-dir", tmp_path / "results")
    assert result.exit_code == 0, result.output
    stored = json.loads((tmp_path / "results/benchmark.json").read_text())
    cell = stored["cells"][0]
    assert list(cell["PrivateTest"]["f1"])[-1] == "contempt" and len(cell["PrivateTest"]["confusion_matrix"]) == 8
    assert stored["data"]["format"] == "auto" and stored["data"]["counts"]["Training"]["contempt"] > 0
