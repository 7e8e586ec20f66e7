"""The ``fer`` command line, driven through typer's CliRunner; one tiny training on the real zip."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from conftest import assert_user_error, fer  # noqa: E402
from PIL import Image

from fer_features.config import EMOTIONS
from fer_features.data.fer2013 import FERDataset
from fer_features.data.sources import limit_dataset


def train_args(data, out, *extra):
    return ["train", "--data", data, "--limit", 150, "--features", "hog+landmarks", "--clf", "logreg",
            "--out", out, "--n-jobs", 1, *extra]


@pytest.fixture(scope="module")
def trained(real_zip, tmp_path_factory):
    """One tiny training on the real zip, shared by the tests of this module: the model path."""
    out = tmp_path_factory.mktemp("model") / "model.skops"
    # PCA is set below the 150 training images (see test_train_with_default_pca_and_small_limit)
    result = fer(*train_args(real_zip, out, "--pca", 64))
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def tiny_model_file(tmp_path_factory, tiny_model):
    """The synthetic-pattern pipeline saved as a model file (needs no real data)."""
    from fer_features.persist.files import save_model

    return save_model(tiny_model, tmp_path_factory.mktemp("tiny") / "tiny.skops", {"features": "hog"})


# --------------------------------------------------------------------------- train


def test_train_writes_model_card_and_plot(trained, real_data):
    assert trained.is_file()
    card = json.loads(trained.with_suffix(".json").read_text())
    assert card["features"] == "hog+landmarks" and card["classifier"] == "logreg"
    assert card["classes"] == sorted(EMOTIONS)

    private = card["metrics"]["PrivateTest"]
    assert 0.0 <= private["accuracy"] <= 1.0 and 0.0 <= private["macro_f1"] <= 1.0
    cm = np.array(private["confusion_matrix"])
    assert cm.shape == (7, 7) and cm.sum() == private["n"]
    assert private["accuracy"] == pytest.approx(np.trace(cm) / cm.sum())
    assert "PublicTest" in card["metrics"]

    # the fingerprint and counts describe the data the model was trained and scored on
    used = limit_dataset(real_data, 150, 0)
    assert card["data"]["fingerprint"] == used.fingerprint
    assert card["data"]["counts"] == used.counts()
    assert sum(card["data"]["counts"]["PrivateTest"].values()) == private["n"]
    assert card["data"]["skipped"] == 0

    versions = card["library_versions"]
    assert {"python", "numpy", "scikit-learn", "scikit-image", "joblib"} <= set(versions)
    timings = card["timings"]
    for key in ("load_seconds", "fit_seconds", "evaluate_seconds", "total_seconds",
                "extract_hog_seconds", "extract_landmarks_seconds"):
        assert timings[key] >= 0
    assert card["params"]["pca__n_components"] == 64

    plot = trained.with_suffix(".confusion.png")
    with Image.open(plot) as im:
        assert im.format == "PNG" and im.size[0] > 100


def test_train_with_default_pca_and_small_limit(real_zip, tmp_path):
    """The issue's quick run: default --pca 256 with only 150 Training images."""
    out = tmp_path / "model.skops"
    result = fer(*train_args(real_zip, out))
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    assert out.is_file()


def test_saved_model_predicts_in_a_plain_script(trained, real_zip):
    script = textwrap.dedent(
        f"""
        import io, json, zipfile
        import numpy as np
        from PIL import Image
        from fer_features.persist.files import load_model
        with zipfile.ZipFile({str(real_zip)!r}) as zf:
            names = sorted(n for n in zf.namelist() if "/PrivateTest_" in n)[:6]
            faces = np.stack([np.asarray(Image.open(io.BytesIO(zf.read(n))).convert("L")) for n in names])
        assert faces.shape == (6, 48, 48) and faces.dtype == np.uint8
        print(json.dumps([str(p) for p in load_model({str(trained)!r}).predict(faces)]))
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    predicted = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(predicted) == 6 and set(predicted) <= set(EMOTIONS)


# --------------------------------------------------------------------------- evaluate


def test_evaluate_json(trained, real_zip, real_data):
    result = fer("evaluate", trained, "--data", real_zip, "--json")
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    n_private = int((real_data.usage == "PrivateTest").sum())
    assert metrics["split"] == "PrivateTest" and metrics["n"] == n_private
    assert 0.0 <= metrics["accuracy"] <= 1.0
    cm = np.array(metrics["confusion_matrix"])
    assert cm.sum() == n_private
    assert metrics["accuracy"] == pytest.approx(np.trace(cm) / n_private)
    assert [metrics["per_class"][e]["support"] for e in EMOTIONS] == list(cm.sum(axis=1))
    assert metrics["data_fingerprint"] == real_data.fingerprint
    assert metrics["faces_found"] == n_private and metrics["no_face"] == []
    assert 0.0 <= metrics["balanced_accuracy"] <= 1.0
    # the confusion PNG only with --plot (test_evaluation writes one): nothing beside the model
    assert metrics["plot"] is None and not list(trained.parent.glob("*.PrivateTest.confusion.png"))


# --------------------------------------------------------------------------- predict


@pytest.fixture(scope="module")
def astronaut_prediction(trained, astronaut_png, tmp_path_factory):
    annotated = tmp_path_factory.mktemp("annotated") / "out.png"
    result = fer("predict", astronaut_png, "--model", trained, "--json", "--annotate", annotated)
    return result, annotated


def test_predict_astronaut_json(astronaut_prediction, astronaut_png):
    result, _ = astronaut_prediction
    assert result.exit_code == 0, result.output
    (photo,) = json.loads(result.stdout)
    assert photo["path"] == str(astronaut_png) and photo["error"] is None
    assert (photo["width"], photo["height"]) == (512, 512)
    assert photo["faces"], "no face found"
    for face in photo["faces"]:
        assert set(face["probabilities"]) == set(EMOTIONS)
        assert sum(face["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
        assert face["label"] == max(face["probabilities"], key=face["probabilities"].get)


def test_predict_astronaut_finds_one_face(astronaut_prediction):
    result, _ = astronaut_prediction
    (photo,) = json.loads(result.stdout)
    assert len(photo["faces"]) == 1, [f["box"] for f in photo["faces"]]


def test_predict_annotate_writes_png_of_same_size(astronaut_prediction, astronaut_png):
    _, annotated = astronaut_prediction
    with Image.open(annotated) as out, Image.open(astronaut_png) as src:
        assert out.format == "PNG" and out.size == src.size
        assert np.any(np.asarray(out.convert("RGB")) != np.asarray(src.convert("RGB")))


def test_predict_table_and_no_face(tiny_model_file, faceless_png, crop_png):
    result = fer("predict", faceless_png, crop_png, "--model", tiny_model_file)
    assert result.exit_code == 0, result.output
    assert "no face" in result.stdout
    assert "brick.png" in result.stdout and "crop.png" in result.stdout


def test_predict_no_face_json(tiny_model_file, faceless_png):
    result = fer("predict", faceless_png, "--model", tiny_model_file, "--json")
    assert result.exit_code == 0, result.output
    (photo,) = json.loads(result.stdout)
    assert photo["faces"] == [] and photo["error"] is None


def test_predict_bad_file_in_batch(tiny_model_file, crop_png, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    result = fer("predict", bad, crop_png, "--model", tiny_model_file, "--json")
    assert_user_error(result, "bad.png")
    bad_result, good_result = json.loads(result.stdout)
    assert bad_result["error"] and bad_result["faces"] == []
    assert good_result["error"] is None and len(good_result["faces"]) == 1


def test_predict_folder_annotates_each(tiny_model_file, crop_png, faceless_png, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for src in (crop_png, faceless_png):
        (folder / src.name).write_bytes(src.read_bytes())
    result = fer("predict", folder, "--model", tiny_model_file, "--json", "--annotate", tmp_path / "ann")
    assert result.exit_code == 0, result.output
    assert [os.path.basename(r["path"]) for r in json.loads(result.stdout)] == ["brick.png", "crop.png"]
    assert sorted(p.name for p in (tmp_path / "ann").iterdir()) == ["brick.annotated.png", "crop.annotated.png"]


# --------------------------------------------------------------------------- user mistakes: exit 2, no traceback


def test_train_missing_data(tmp_path):
    assert_user_error(fer(*train_args(tmp_path / "nope.zip", tmp_path / "m.skops")), "nope.zip")


def test_train_not_a_data_file(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    assert_user_error(fer(*train_args(notes, tmp_path / "m.skops")), "notes.txt")


def test_train_unknown_feature(tmp_path):
    result = fer("train", "--data", tmp_path / "x.zip", "--features", "hog+sift", "--out", tmp_path / "m.skops")
    assert_user_error(result, "sift", "hog", "lbp", "landmarks")


def test_train_unknown_classifier(tmp_path):
    result = fer("train", "--data", tmp_path / "x.zip", "--features", "hog", "--clf", "forest", "--out", tmp_path / "m.skops")
    assert_user_error(result, "forest", "svm", "logreg")
    assert not (tmp_path / "m.skops").exists()


def test_evaluate_missing_model(tmp_path):
    assert_user_error(fer("evaluate", tmp_path / "none.skops", "--data", tmp_path / "x.zip"), "none.skops", "fer train")


def test_predict_missing_model(tmp_path, crop_png):
    assert_user_error(fer("predict", crop_png, "--model", tmp_path / "none.skops"), "none.skops", "fer train")


def test_predict_missing_photo(tmp_path, tiny_model_file):
    assert_user_error(fer("predict", tmp_path / "ghost.jpg", "--model", tiny_model_file), "ghost.jpg")


def test_list():
    result = fer("list")
    assert result.exit_code == 0
    for name in ("hog", "lbp", "landmarks", "svm", "linear-svm", "gbm", "logreg"):
        assert name in result.stdout


# --------------------------------------------------------------------------- --limit


def _toy_dataset(n=400, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 7, n)
    usage = np.array(["Training", "PublicTest", "PrivateTest"])[rng.integers(0, 3, n)]
    X = rng.integers(0, 256, (n, 48, 48), dtype=np.uint8)
    return FERDataset(X, y, usage, np.array([f"img{i}" for i in range(n)]), "toy", "f")


def test_limit_is_stratified_and_seeded():
    data = _toy_dataset()
    small = limit_dataset(data, 30, 0)
    for usage in ("Training", "PublicTest", "PrivateTest"):
        full = np.bincount(data.y[data.usage == usage], minlength=7)
        kept = np.bincount(small.y[small.usage == usage], minlength=7)
        # each emotion keeps its share of the split (to rounding), and every emotion is present
        assert (np.abs(kept - 30 * full / full.sum()) <= 1).all(), (kept, full)
        assert (kept >= 1).all()
    assert set(small.names) <= set(data.names)
    np.testing.assert_array_equal(limit_dataset(data, 30, 0).names, small.names)
    assert limit_dataset(data, 0, 0) is data


def test_limit_never_exceeds_the_limit():
    # one frequent class and six rare ones, as in FER2013 (disgust is 1.5% of Training)
    y = np.r_[np.zeros(100, int), np.arange(1, 7)]
    data = FERDataset(np.zeros((106, 48, 48), np.uint8), y, np.full(106, "Training"), np.arange(106).astype(str), "toy", "f")
    assert len(limit_dataset(data, 10, 0)) <= 10  # help: "Use at most this many images per split"


def test_limit_is_the_same_in_every_process():
    """`fer train --limit N --seed S` must pick the same images run after run (hash seeds differ)."""
    script = textwrap.dedent(
        """
        import numpy as np
        from fer_features.data.sources import limit_dataset
        from fer_features.data.fer2013 import FERDataset
        rng = np.random.default_rng(0)
        n = 400
        y = rng.integers(0, 7, n)
        usage = np.array(["Training", "PublicTest", "PrivateTest"])[rng.integers(0, 3, n)]
        data = FERDataset(np.zeros((n, 48, 48), np.uint8), y, usage, np.arange(n).astype(str), "toy", "f")
        print(" ".join(limit_dataset(data, 20, 0).names.tolist()))
        """
    )
    picks = set()
    for hash_seed in ("0", "1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60)
        assert proc.returncode == 0, proc.stderr
        picks.add(proc.stdout.strip())
    assert len(picks) == 1
