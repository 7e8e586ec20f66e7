"""fer_features.persist: atomic saves, model cards, loading with clear errors."""

from __future__ import annotations

import json
import pickle

import joblib
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from fer_features.persist import (
    ModelError,
    atomic_path,
    card_path,
    default_model_path,
    library_versions,
    load_model,
    read_card,
    save_model,
)


def small_model(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(40, 3))
    y = np.where(X[:, 0] + rng.normal(0, 0.1, 40) > 0, "happy", "sad")
    return Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression())]).fit(X, y), X


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_save_and_load_round_trip(tmp_path):
    model, X = small_model()
    path = tmp_path / "sub" / "m.joblib"  # folders are created
    assert save_model(model, path, {"features": "hog", "metrics": {"accuracy": 0.5}}) == path
    loaded = load_model(path)
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    card = json.loads(card_path(path).read_text())
    assert card_path(path) == tmp_path / "sub" / "m.json"
    assert card["features"] == "hog" and card["metrics"] == {"accuracy": 0.5}
    assert card["library_versions"] == library_versions()
    assert "python" in card["library_versions"] and "scikit-learn" in card["library_versions"]
    assert read_card(path) == card
    assert leftovers(path.parent) == []


def test_save_without_card(tmp_path):
    model, _ = small_model()
    save_model(model, tmp_path / "m.joblib")
    assert not (tmp_path / "m.json").exists()
    assert read_card(tmp_path / "m.joblib") == {}


def test_failed_dump_leaves_earlier_model_intact(tmp_path, monkeypatch):
    first, X = small_model(0)
    path = tmp_path / "m.joblib"
    save_model(first, path, {"version": 1})
    before = path.read_bytes()
    card_before = card_path(path).read_text()

    def broken_dump(*args, **kwargs):
        # write something first, as a dump that dies half-way would
        with open(args[1], "wb") as fh:
            fh.write(b"half a model")
        raise OSError("disk full")

    monkeypatch.setattr(joblib, "dump", broken_dump)
    second, _ = small_model(1)
    with pytest.raises(OSError, match="disk full"):
        save_model(second, path, {"version": 2})
    assert path.read_bytes() == before
    assert card_path(path).read_text() == card_before
    assert leftovers(tmp_path) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["m.joblib", "m.json"]
    monkeypatch.undo()
    np.testing.assert_array_equal(load_model(path).predict(X), first.predict(X))


def test_atomic_path_only_replaces_on_success(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            assert tmp.parent == tmp_path and tmp != target
            tmp.write_text("new")
            raise RuntimeError("boom")
    assert target.read_text() == "old" and leftovers(tmp_path) == []
    with atomic_path(target) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new" and leftovers(tmp_path) == []


def test_load_missing_model_says_how_to_train(tmp_path):
    with pytest.raises(ModelError, match="fer train") as info:
        load_model(tmp_path / "none.joblib")
    assert "none.joblib" in str(info.value)


def test_load_default_path_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("FER_MODEL", str(tmp_path / "env.joblib"))
    assert default_model_path() == tmp_path / "env.joblib"
    with pytest.raises(ModelError, match="env.joblib"):
        load_model()


@pytest.mark.parametrize(
    "content, match",
    [
        (lambda p: joblib.dump({"weights": [1, 2, 3]}, p), "holds a dict"),
        (lambda p: p.write_bytes(pickle.dumps("just a string")), "holds a str"),
        (lambda p: joblib.dump(Pipeline([("clf", LogisticRegression())]), p), "not a fitted classifier"),
        (lambda p: p.write_bytes(b"\x80\x04garbage that is no pickle"), "not a readable model file"),
        (lambda p: p.write_bytes(b""), "not a readable model file"),
    ],
    ids=["dict", "str", "unfitted-pipeline", "garbage", "empty"],
)
def test_load_non_model_raises_model_error(tmp_path, content, match):
    path = tmp_path / "x.joblib"
    content(path)
    with pytest.raises(ModelError, match=match) as info:
        load_model(path)
    assert "x.joblib" in str(info.value)
