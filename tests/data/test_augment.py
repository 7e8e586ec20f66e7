"""Training-set augmentation and oversampling, and their fer train / fer cv options."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import assert_user_error, fer
from sklearn.base import clone

from fer_features.data.resampling import TrainingResampler, augment, oversample, resample_training, shift_images


def test_augment_mirrors_and_shifts():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, (5, 48, 48), dtype=np.uint8)
    y = np.array(["a", "b", "a", "c", "a"])
    Xa, ya = augment(X, y)
    assert Xa.shape == (10, 48, 48) and Xa.dtype == np.uint8
    np.testing.assert_array_equal(Xa[:5], X)
    np.testing.assert_array_equal(Xa[5:], X[:, :, ::-1])
    assert ya.tolist() == y.tolist() * 2
    Xs, ys = augment(X, y, shift=2, seed=1)
    assert Xs.shape == (15, 48, 48) and ys.tolist() == y.tolist() * 3
    np.testing.assert_array_equal(Xs, augment(X, y, shift=2, seed=1)[0])  # seeded


def test_shift_images():
    X = np.arange(2 * 6 * 6, dtype=np.uint8).reshape(2, 6, 6)
    out = shift_images(X, np.array([1, 0]), np.array([0, -2]))
    np.testing.assert_array_equal(out[0][:, 1:], X[0][:, :-1])  # one pixel to the right
    np.testing.assert_array_equal(out[0][:, 0], X[0][:, 0])  # edge filled
    np.testing.assert_array_equal(out[1][:-2], X[1][2:])  # two pixels up


def test_oversample_balances_classes():
    X = np.arange(8)[:, None, None] * np.ones((1, 4, 4), np.uint8)
    y = np.array(["a"] * 5 + ["b"] * 2 + ["c"])
    Xo, yo = oversample(X, y, seed=0)
    assert sorted(np.unique(yo, return_counts=True)[1].tolist()) == [5, 5, 5]
    np.testing.assert_array_equal(Xo[:8], X)  # every original once, first
    assert set(Xo[yo == "c"][:, 0, 0].tolist()) == {7}
    with pytest.raises(ValueError, match="unknown balance"):
        resample_training(X, y, balance="smote")


def test_resampler_in_cross_validation(patterns):
    from sklearn.model_selection import cross_val_score

    from fer_features.training.pipelines import build_pipeline

    X, labels = patterns
    est = TrainingResampler(build_pipeline("hog", "logreg", pca=20, n_jobs=1), augment_flip=True, balance="oversample")
    scores = cross_val_score(clone(est), X, labels, cv=3)
    assert scores.mean() > 0.8
    fitted = est.fit(X, labels)
    assert list(fitted.classes_) == sorted(set(labels))
    assert fitted.predict_proba(X[:2]).shape == (2, 7)


@pytest.mark.parametrize("options", [["--augment"], ["--balance", "oversample"], ["--augment", "--augment-shift", "2", "--balance", "weights"]])
def test_train_options(make_fer, tmp_path, options):
    src = make_fer(per_class=3)
    out = tmp_path / "m.skops"
    result = fer("train", "--data", src.zip, "--features", "hog", "--clf", "logreg", "--pca", "0", "--n-jobs", "1", "--out", out, *options)
    assert result.exit_code == 0, result.output
    card = json.loads(out.with_suffix(".json").read_text())
    resampling = card["data"]["training_resampling"]
    factor = (3 if "--augment-shift" in options else 2) if "--augment" in options else 1
    assert resampling["n_fit"] == 21 * factor  # 3 per class, balanced already
    if "weights" in options:
        assert card["params"]["clf__class_weight"] == "balanced"


def test_train_option_errors(make_fer, tmp_path):
    src = make_fer(per_class=1)
    assert_user_error(fer("train", "--data", src.zip, "--augment-shift", "2", "--out", tmp_path / "m.skops"), "needs --augment")
    result = fer("train", "--data", src.zip, "--balance", "smote", "--out", tmp_path / "m.skops")
    assert result.exit_code == 2


def test_cv_with_augment(make_fer):
    src = make_fer(per_class=4)
    result = fer("cv", "--data", src.zip, "--features", "hog", "--clf", "logreg", "--pca", "0", "--folds", "2", "--n-jobs", "1", "--augment", "--balance", "oversample", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["n_images"] == 28
