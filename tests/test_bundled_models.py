"""The models shipped inside the package: found by name from any folder, listed by ``fer models``, never written to."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import assert_user_error, fer

from fer_features import config
from fer_features.models import compare_cards, list_models, model_info
from fer_features.persist import OutputError, check_writable, load_model, read_card


@pytest.mark.parametrize("name", config.BUNDLED_MODELS)
def test_each_bundled_model_is_package_data_with_a_card(name):
    path = config.bundled_model_path(name)
    assert path.parent == config.bundled_models_dir()
    assert path.is_file() and path.suffix == config.MODEL_SUFFIX
    card = read_card(path)
    assert set(card["classes"]) <= set(config.EMOTIONS8)
    assert {"PublicTest", "PrivateTest"} <= set(card["metrics"])


def test_bundled_directory_is_inside_the_installed_package():
    import fer_features

    assert config.bundled_models_dir() == config.Path(fer_features.__file__).parent / "models"


def test_a_name_picks_a_bundled_model_and_a_path_picks_a_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert config.resolve_model("accurate") == config.bundled_model_path("accurate")
    assert config.resolve_model(config.Path("default")) == config.bundled_model_path("default")
    assert config.resolve_model("models/mine.skops") == config.Path("models/mine.skops")
    assert config.resolve_model("unknown") == config.Path("unknown")
    (tmp_path / "accurate").write_bytes(b"a file of the user's")  # an existing file is that file
    assert config.resolve_model("accurate") == config.Path("accurate")
    with pytest.raises(ValueError, match="default, accurate"):
        config.bundled_model_path("nope")


def test_default_model_is_the_bundled_default_unless_FER_MODEL_names_another(monkeypatch, tmp_path):
    monkeypatch.delenv(config.ENV_MODEL, raising=False)
    assert config.default_model_path() == config.bundled_model_path(config.DEFAULT_MODEL)
    monkeypatch.setenv(config.ENV_MODEL, "accurate")
    assert config.default_model_path() == config.bundled_model_path("accurate")
    monkeypatch.setenv(config.ENV_MODEL, str(tmp_path / "m.skops"))
    assert config.default_model_path() == tmp_path / "m.skops"


def test_bundled_default_loads_from_another_folder_and_classifies_crops(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no models/ here
    model = load_model()  # the bundled default
    proba = model.predict_proba(np.random.default_rng(0).integers(0, 256, (3, 48, 48), dtype=np.uint8))
    assert proba.shape == (3, len(model.classes_))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert list(model.classes_) == read_card(config.bundled_model_path("default"))["classes"]


def test_missing_model_names_the_bundled_ones(tmp_path):
    from fer_features.persist import ModelError

    with pytest.raises(ModelError, match="bundled models are default, accurate"):
        load_model(tmp_path / "absent.skops")


def test_no_output_is_written_into_the_bundled_models():
    with pytest.raises(OutputError, match="bundled models"):
        check_writable(config.bundled_models_dir() / "mine.skops")


def test_fer_train_refuses_an_out_inside_the_package(make_fer):
    result = fer("train", "--data", make_fer().zip, "--features", "hog", "--clf", "logreg",
                 "--out", config.bundled_models_dir() / "default.skops")  # fmt: skip
    assert_user_error(result, "bundled models")


def test_model_info_reads_the_card(tiny_model_path):
    card = read_card(tiny_model_path)
    info = model_info(tiny_model_path)
    assert info["name"] == tiny_model_path.stem and info["source"] == "file"
    assert info["features"] == card["features"] and info["classifier"] == card["classifier"]
    assert info["size_mb"] == round(tiny_model_path.stat().st_size / 2**20, 1)


def test_crops_per_second_is_privatetest_faces_over_predict_seconds(tmp_path):
    model = tmp_path / "m.skops"
    model.write_bytes(b"PK\x03\x04")
    metrics = {"PrivateTest": {"n": 3589, "accuracy": 0.7, "macro_f1": 0.69, "predict_seconds": 0.5}}
    (tmp_path / "m.json").write_text(json.dumps({"metrics": metrics, "classes": list(config.EMOTIONS)}))
    info = model_info(model)
    assert info["crops_per_second"] == round(3589 / 0.5)
    assert (info["accuracy"], info["macro_f1"]) == (0.7, 0.69)


def test_fer_models_lists_bundled_then_local_models(tmp_path, monkeypatch, tiny_model_path):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    shutil.copy(tiny_model_path, tmp_path / "models" / "mine.skops")
    shutil.copy(tiny_model_path.with_suffix(".json"), tmp_path / "models" / "mine.json")
    result = fer("models", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [(r["name"], r["source"]) for r in rows] == [*((n, "bundled") for n in config.BUNDLED_MODELS), ("mine", "file")]
    for row in rows[:2]:
        card = read_card(config.bundled_model_path(row["name"]))
        assert row["accuracy"] == card["metrics"]["PrivateTest"]["accuracy"]
        assert row["command"] == card["command"]
    assert rows == list_models("models")
    table = fer("models")
    assert table.exit_code == 0 and "accurate" in table.stdout and "mine" in table.stdout


def _card(path, accuracy):
    path.with_suffix(".skops").write_bytes(b"PK\x03\x04")
    metrics = {s: {"accuracy": accuracy, "macro_f1": 0.6} for s in ("PublicTest", "PrivateTest")}
    path.with_suffix(".json").write_text(json.dumps({"metrics": metrics}))
    return path.with_suffix(".skops")


def test_compare_says_whether_a_rebuilt_model_scores_the_same(tmp_path):
    a, b, c = _card(tmp_path / "a", 0.7105), _card(tmp_path / "b", 0.7105 + 0.0003), _card(tmp_path / "c", 0.7000)
    assert compare_cards(a, b)["same"] and not compare_cards(a, c)["same"]
    assert [r["difference"] for r in compare_cards(a, c)["rows"]][0] == pytest.approx(0.0105)
    same = fer("models", "compare", a, str(b))
    assert same.exit_code == 0 and "scores the same as" in same.stdout
    differs = fer("models", "compare", a, str(c))
    assert differs.exit_code == 0 and "does not score the same as" in differs.stdout
    assert_user_error(fer("models", "compare", tmp_path / "nocard.skops", "default"), "no model card")
