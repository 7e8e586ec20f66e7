"""The models shipped inside the package: found by name from any folder, listed by ``fer models``, never written to."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_user_error, fer

from fer_features import config
from fer_features.models import compare_cards, list_models, model_info
from fer_features.persist import bundled
from fer_features.persist.cards import read_card
from fer_features.persist.files import load_model
from fer_features.persist.outputs import OutputError, check_writable


@pytest.mark.parametrize("name", config.BUNDLED_MODELS)
def test_each_bundled_model_is_package_data_with_a_card(name):
    path = bundled.bundled_model_path(name)
    assert path.parent == bundled.bundled_models_dir()
    assert path.is_file() and path.suffix == config.MODEL_SUFFIX
    card = read_card(path)
    assert set(card["classes"]) <= set(config.EMOTIONS8)
    assert {"PublicTest", "PrivateTest"} <= set(card["metrics"])


def test_bundled_directory_is_inside_the_installed_package():
    import fer_features

    assert bundled.bundled_models_dir() == Path(fer_features.__file__).parent / "models"


def test_a_name_picks_a_bundled_model_and_a_path_picks_a_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert bundled.resolve_model("accurate") == bundled.bundled_model_path("accurate")
    assert bundled.resolve_model(Path("default")) == bundled.bundled_model_path("default")
    assert bundled.resolve_model("models/mine.skops") == Path("models/mine.skops")
    assert bundled.resolve_model("unknown") == Path("unknown")
    (tmp_path / "accurate").write_bytes(b"a file of the user's")  # an existing file is that file
    assert bundled.resolve_model("accurate") == Path("accurate")
    with pytest.raises(ValueError, match="default, accurate"):
        bundled.bundled_model_path("nope")


def test_default_model_is_the_bundled_default_unless_FER_MODEL_names_another(monkeypatch, tmp_path):
    monkeypatch.delenv(config.ENV_MODEL, raising=False)
    assert bundled.default_model_path() == bundled.bundled_model_path(config.DEFAULT_MODEL)
    monkeypatch.setenv(config.ENV_MODEL, "accurate")
    assert bundled.default_model_path() == bundled.bundled_model_path("accurate")
    monkeypatch.setenv(config.ENV_MODEL, str(tmp_path / "m.skops"))
    assert bundled.default_model_path() == tmp_path / "m.skops"


def test_bundled_default_loads_from_another_folder_and_classifies_crops(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no models/ here
    monkeypatch.delenv(config.ENV_MODEL, raising=False)
    model = load_model()  # the bundled default
    proba = model.predict_proba(np.random.default_rng(0).integers(0, 256, (3, 48, 48), dtype=np.uint8))
    assert proba.shape == (3, len(model.classes_))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert list(model.classes_) == read_card(bundled.bundled_model_path("default"))["classes"]


def test_missing_model_names_the_bundled_ones(tmp_path):
    from fer_features.persist.files import ModelError

    with pytest.raises(ModelError, match="bundled models are default, accurate"):
        load_model(tmp_path / "absent.skops")


def test_no_output_is_written_into_the_bundled_models():
    with pytest.raises(OutputError, match="bundled models"):
        check_writable(bundled.bundled_models_dir() / "mine.skops")


def test_fer_train_refuses_an_out_inside_the_package(make_fer):
    result = fer("train", "--data", make_fer().zip, "--features", "hog", "--clf", "logreg",
                 "--out", bundled.bundled_models_dir() / "default.skops")  # fmt: skip
    assert_user_error(result, "bundled models")


def test_model_info_reads_the_card(tiny_model_path):
    card = read_card(tiny_model_path)
    info = model_info(tiny_model_path)
    assert info["name"] == tiny_model_path.stem and info["source"] == "file"
    assert info["features"] == card["features"] and info["classifier"] == card["classifier"]
    assert info["size_mb"] == round(tiny_model_path.stat().st_size / 1e6, 1)


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
        card = read_card(bundled.bundled_model_path(row["name"]))
        assert row["accuracy"] == card["metrics"]["PrivateTest"]["accuracy"]
        assert row["command"] == card["command"]
    assert rows == list_models("models")
    table = fer("models")
    assert table.exit_code == 0 and "accurate" in table.stdout and "mine" in table.stdout


def _card(path, accuracy, macro_f1=0.6, cpu=None):
    path.with_suffix(".skops").write_bytes(b"PK\x03\x04")
    metrics = {s: {"accuracy": accuracy, "macro_f1": macro_f1} for s in ("PublicTest", "PrivateTest")}
    path.with_suffix(".json").write_text(json.dumps({"metrics": metrics, "machine": {"cpu": cpu}}))
    return path.with_suffix(".skops")


def test_compare_says_whether_a_rebuilt_model_scores_the_same(tmp_path):
    a = _card(tmp_path / "a", 0.7105, cpu="Intel Xeon")
    b = _card(tmp_path / "b", 0.7105 + 0.0003)
    c = _card(tmp_path / "c", 0.7000)
    d = _card(tmp_path / "d", 0.7105, macro_f1=0.6 - 0.002, cpu="AMD EPYC")  # one metric a few faces off
    assert [compare_cards(a, x)["verdict"] for x in (b, c, d)] == ["same", "different", "close"]
    assert compare_cards(a, b)["same"] and not compare_cards(a, d)["same"]
    assert next(r["difference"] for r in compare_cards(a, c)["rows"]) == pytest.approx(0.0105)
    assert compare_cards(a, d)["cpus"] == ["Intel Xeon", "AMD EPYC"]
    same = fer("models", "compare", a, str(b))
    assert same.exit_code == 0 and "scores the same as" in same.stdout
    differs = fer("models", "compare", a, str(c))
    assert differs.exit_code == 0 and "does not score the same as" in differs.stdout
    close = fer("models", "compare", a, str(d))
    assert close.exit_code == 0 and "within a few faces" in close.stdout and "different CPUs" in close.stdout
    assert_user_error(fer("models", "compare", tmp_path / "nocard.skops", "default"), "no model card")


def test_fer_models_lists_checkpoints_and_cardless_files_and_refuses_a_missing_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert [r["source"] for r in list_models("models")] == ["bundled"] * len(config.BUNDLED_MODELS)  # no ./models
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "net.pt").write_bytes(b"weights")
    (tmp_path / "mine" / "bare.skops").write_bytes(b"PK\x03\x04")
    (tmp_path / "mine" / "notes.txt").write_text("not a model")
    rows = {r["name"]: r for r in list_models("mine")}
    assert {"net", "bare"} <= set(rows) and "notes" not in rows
    assert rows["bare"]["accuracy"] is None and rows["bare"]["command"] is None
    listed = fer("models", "--folder", tmp_path / "mine")
    assert listed.exit_code == 0 and "bare" in listed.stdout and "None" not in listed.stdout
    assert_user_error(fer("models", "--folder", tmp_path / "absent"), "no such folder")


def test_a_missing_extra_is_one_line_naming_it(monkeypatch, tmp_path):
    import sys

    from fer_features.extras import import_optional

    monkeypatch.setitem(sys.modules, "dlib", None)  # as if not installed
    with pytest.raises(ImportError, match=r"the hog face detector needs dlib.*pip install 'fer-features\[train\]'"):
        import_optional("dlib", "the hog face detector")
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    result = fer("evaluate", "default", "--data", tmp_path, "--plot", tmp_path / "cm.png")
    assert_user_error(result, "matplotlib", "fer-features[train]")
    assert not (tmp_path / "cm.png").exists()


@pytest.mark.parametrize("name", config.BUNDLED_MODELS)
def test_bundled_models_name_todays_type_paths(name):
    """Re-saved with the sub-packages' paths: they load without the renaming of old files."""
    from fer_features.persist.trust import OLD_TYPE_PATHS, skops_io, trusted_types

    found = set(skops_io().get_untrusted_types(file=bundled.bundled_model_path(name)))
    assert found <= trusted_types() and not found & set(OLD_TYPE_PATHS)
