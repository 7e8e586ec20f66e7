"""`fer cv`: stratified k-fold on Training, checked against scikit-learn run directly."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import assert_user_error, fer
from sklearn.model_selection import StratifiedKFold, cross_validate

from fer_features.data.fer2013 import load_fer2013
from fer_features.data.sources import limit_dataset
from fer_features.training.pipelines import build_pipeline


def test_cv_matches_sklearn_cross_validate(real_zip):
    result = fer("cv", "--data", real_zip, "--features", "hog", "--clf", "logreg", "--folds", 3,
                 "--limit", 300, "--pca", 32, "--n-jobs", 1, "--seed", 4, "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["folds"] == 3 and len(out["per_fold"]) == 3 and out["n_images"] == 300
    accuracies = [f["accuracy"] for f in out["per_fold"]]
    assert out["accuracy_mean"] == pytest.approx(np.mean(accuracies))
    assert out["accuracy_std"] == pytest.approx(np.std(accuracies))
    assert all(f["fit_seconds"] >= 0 for f in out["per_fold"])

    # the same images, folds and pipeline, through scikit-learn directly
    X, y = limit_dataset(load_fer2013(real_zip), 300, 4).split("Training")
    pipe = build_pipeline("hog", "logreg", pca=32, n_jobs=1, random_state=4)
    direct = cross_validate(pipe, X, y, cv=StratifiedKFold(3, shuffle=True, random_state=4),
                            scoring={"accuracy": "accuracy", "macro_f1": "f1_macro"})
    np.testing.assert_allclose(accuracies, direct["test_accuracy"])
    np.testing.assert_allclose([f["macro_f1"] for f in out["per_fold"]], direct["test_macro_f1"])


def test_cv_table(real_zip):
    result = fer("cv", "--data", real_zip, "--features", "hog", "--clf", "logreg", "--folds", 2,
                 "--limit", 120, "--pca", 16, "--n-jobs", 1)
    assert result.exit_code == 0, result.output
    assert "mean ± std" in result.stdout and "2-fold" in result.stdout


def test_cv_user_errors(real_zip, tmp_path):
    assert_user_error(fer("cv", "--data", tmp_path / "missing.zip", "--features", "hog"), "missing.zip")
    assert_user_error(fer("cv", "--data", real_zip, "--features", "hog+nope"), "nope")
    assert_user_error(fer("cv", "--data", real_zip, "--clf", "cnn"), "fer train --clf cnn")
    assert fer("cv", "--data", real_zip, "--folds", 1).exit_code == 2  # typer: --folds must be >= 2
