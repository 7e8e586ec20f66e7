"""Classes of 1-2 faces: every head trains (fewer inner folds, with a warning) or refuses in one line."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import pattern_images

from fer_features.classifiers import list_classifiers
from fer_features.datasets import EMOTIONS, FERDataset
from fer_features.small_data import SmallClassError, check_cv_folds, fit_to_class_counts, smallest_class
from fer_features.training import cross_validate_pipeline, train

#: Heads that split Training again inside fit by stratified k-fold (probability calibration or stacking).
FOLDED = {"svm", "linear-svm", "chi2-svm", "intersection-svm", "stacked-svm"}
#: Features each head is trained on here (the histogram kernels need histograms).
FEATURES = {"chi2-svm": "lbp", "intersection-svm": "lbp", "stacked-svm": "hog+lbp", "cnn": None, "cnn-ensemble": None}


def small_dataset(smallest: int, second: int = 2, per_class: int = 8) -> FERDataset:
    """Synthetic learnable crops: ``per_class`` Training faces per emotion, 'disgust' with ``smallest``
    and 'fear' with ``second``; 3 PublicTest and 3 PrivateTest faces per emotion."""
    X, labels = pattern_images(per_class=per_class + 6, seed=3)
    y = np.array([EMOTIONS.index(e) for e in labels])
    keep = {"disgust": smallest, "fear": second}
    usage, index = [], []
    for k, emotion in enumerate(EMOTIONS):
        rows = np.flatnonzero(y == k)
        n_train = keep.get(emotion, per_class)
        index += [*rows[:n_train], *rows[per_class : per_class + 6]]
        usage += ["Training"] * n_train + ["PublicTest"] * 3 + ["PrivateTest"] * 3
    index = np.array(index)
    return FERDataset(
        X=X[index], y=y[index], usage=np.array(usage), names=np.array([f"face {i}" for i in index]),
        source="small", fingerprint=f"small-{smallest}-{second}",
    )  # fmt: skip


@pytest.fixture(scope="module")
def ensemble_member(tmp_path_factory):
    from test_cnn import make_checkpoint

    from fer_features.cnn import save_checkpoint

    ckpt = make_checkpoint()
    ckpt["classes"] = list(EMOTIONS)
    return str(save_checkpoint(ckpt, tmp_path_factory.mktemp("member") / "tiny.pt"))


def train_head(head: str, data: FERDataset, member: str, events: list | None = None):
    options = {"pca": 8, "n_jobs": 1}
    if head == "cnn":
        options["cnn_params"] = {"preset": "small", "epochs": 1, "device": "cpu"}
    if head == "cnn-ensemble":
        options = {"cnn_checkpoint": member, "cnn_params": {"device": "cpu"}}
    on_event = (lambda kind, info: events.append(info.get("text", ""))) if events is not None else None
    return train(data, FEATURES.get(head, "hog"), head, on_event=on_event, **options)


@pytest.mark.parametrize("head", list_classifiers())
def test_every_head_trains_on_a_class_of_two_faces(head, ensemble_member):
    events: list[str] = []
    pipe, _ = train_head(head, small_dataset(smallest=2), ensemble_member, events)
    assert set(pipe.classes_) == set(EMOTIONS)  # no class lost
    proba = pipe.predict_proba(small_dataset(2).split("PrivateTest")[0])
    assert np.allclose(proba.sum(axis=1), 1.0)
    if head in FOLDED:  # the 3-fold calibration or stacking ran on 2 folds, and said so
        assert any("'disgust' has 2 faces" in e and "2-fold" in e for e in events), events


@pytest.mark.parametrize("head", list_classifiers())
def test_every_head_trains_or_refuses_a_class_of_one_face(head, ensemble_member):
    data = small_dataset(smallest=1)
    if head in FOLDED:
        with pytest.raises(SmallClassError) as info:
            train_head(head, data, ensemble_member)
        message = str(info.value)
        assert "\n" not in message and "'disgust' has 1 face in Training" in message and "at least 2" in message
        return
    pipe, _ = train_head(head, data, ensemble_member)
    assert set(pipe.classes_) == set(EMOTIONS)


def test_fit_to_class_counts_changes_only_what_it_must():
    from fer_features.pipelines import build_pipeline

    pipe = build_pipeline("hog", "svm", pca=8)
    assert fit_to_class_counts(pipe, np.repeat(["a", "b"], 3)) == [] and pipe.named_steps["clf"].cv == 3
    notes = fit_to_class_counts(pipe, np.array(["a"] * 5 + ["b"] * 2), head="svm")
    assert pipe.named_steps["clf"].cv == 2 and len(notes) == 1 and "'b' has 2 faces" in notes[0]
    gbm = build_pipeline("hog", "gbm", pca=8)
    notes = fit_to_class_counts(gbm, np.array(["a"] * 30 + ["b"]))
    assert gbm.named_steps["clf"].early_stopping is False and "'b' has 1 face" in notes[0]


def test_smallest_class_and_cv_folds():
    assert smallest_class(np.array(["x", "y", "y", "z", "z", "z"])) == ("x", 1)
    assert check_cv_folds(np.repeat(["a", "b"], 5), 5) == []
    assert "3 of the 5 held-out folds" in check_cv_folds(np.array(["a"] * 9 + ["b"] * 2), 5)[0]
    with pytest.raises(SmallClassError, match="'b' has 1 face"):
        check_cv_folds(np.array(["a"] * 9 + ["b"]), 2)


def test_cross_validation_of_small_classes():
    data = small_dataset(smallest=2)
    result = cross_validate_pipeline(data, "hog", "logreg", folds=3, pca=4, n_jobs=1)
    assert result["folds"] == 3 and len(result["per_fold"]) == 3
    with pytest.raises(SmallClassError, match="'disgust' has 1 face in a training fold of 3-fold"):
        cross_validate_pipeline(data, "hog", "svm", folds=3, pca=4, n_jobs=1)
    with pytest.raises(SmallClassError, match="'disgust' has 1 face in Training"):
        cross_validate_pipeline(small_dataset(smallest=1), "hog", "logreg", folds=3, pca=4, n_jobs=1)


def test_fer_train_small_class_is_one_line_and_rc_2(make_fer, tmp_path):
    from typer.testing import CliRunner

    from fer_features.cli import app

    data = make_fer(per_class=1)  # one face of every emotion in Training
    result = CliRunner().invoke(app, ["train", "--data", str(data.zip), "--features", "hog", "--clf", "svm",
                                      "--pca", "4", "--out", str(tmp_path / "m.skops")])  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "has 1 face in Training" in result.output
    assert not (tmp_path / "m.skops").exists()
