"""The training API, the model card, names and defaults in one place, and the layering of the package."""

from __future__ import annotations

import ast
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fer_features import config
from fer_features.data.fer2013 import DataError, FERDataset
from fer_features.faces.detectors import DETECTORS
from fer_features.persist.cards import ModelCard
from fer_features.training.cv import cross_validate_pipeline
from fer_features.training.run import train
from fer_features.training.settings import TrainSettings, class_weight_for

PACKAGE = Path(__file__).parents[1] / "fer_features"


def toy_data(n_per_split=70, seed=0) -> FERDataset:
    from conftest import pattern_images

    X, labels = pattern_images(per_class=n_per_split // 2, seed=seed)
    rng = np.random.default_rng(seed)
    usage = np.array(config.USAGES)[rng.integers(0, 3, len(X))]
    y = np.array([config.EMOTIONS.index(label) for label in labels])
    return FERDataset(X, y, usage, np.array([f"img{i}" for i in range(len(X))]), "toy", "f")


# --------------------------------------------------------------------------- training API


def test_train_returns_pipeline_and_card_and_saves_them(tmp_path):
    data = toy_data()
    out = tmp_path / "m.joblib"
    events = []
    pipe, card = train(data, "hog", "logreg", pca=16, n_jobs=1, out=out, on_event=lambda k, i: events.append(k))
    assert isinstance(card, ModelCard) and card.features == "hog" and card.classifier == "logreg"
    assert card.feature_dims == 1764 and card.params["pca__n_components"] == 16
    assert card.metrics["PrivateTest"]["n"] == int((data.usage == "PrivateTest").sum())
    assert card.data["fingerprint"] == data.fingerprint and card.timings["fit_seconds"] >= 0
    saved = json.loads(out.with_suffix(".json").read_text())
    assert saved["features"] == "hog" and "library_versions" in saved and "cnn" not in saved
    assert list(saved)[:4] == ["name", "created", "command", "features"]
    assert ModelCard.from_dict(saved).metrics == json.loads(json.dumps(card.metrics))
    assert out.with_suffix(".confusion.png").is_file()
    assert list(pipe.predict(data.X[:3])) and {"fit-start", "extract", "fit-done", "evaluate-done"} <= set(events)


def test_train_calibrate_fits_a_temperature_on_publictest(tmp_path):
    from scipy.special import softmax
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.metrics import log_loss

    from fer_features.persist.files import load_model

    data = toy_data()
    plain, _ = train(data, "hog", "logreg", pca=16, n_jobs=1)
    pipe, card = train(data, "hog", "logreg", pca=16, n_jobs=1, calibrate=True, out=tmp_path / "m.skops")
    assert isinstance(pipe.steps[-1][1], CalibratedClassifierCV)
    t = card.params["calibration"]["temperature"]
    assert card.params["calibration"]["split"] == "PublicTest" and card.params["clf__C"] == plain.get_params()["clf__C"]
    X_pub, y_pub = data.split("PublicTest")
    X_priv = data.split("PrivateTest")[0]
    np.testing.assert_array_equal(pipe.predict(X_priv), plain.predict(X_priv))  # the labels do not change
    # the probabilities are the head's decision values divided by t ...
    z_priv = plain[:-1].transform(X_priv)
    np.testing.assert_allclose(pipe.predict_proba(X_priv), softmax(plain[-1].decision_function(z_priv) / t, axis=1), atol=1e-4)
    # ... and t is the temperature that minimises the log loss on PublicTest (not on another split)
    logits = plain[-1].decision_function(plain[:-1].transform(X_pub))
    loss = lambda temperature: log_loss(y_pub, softmax(logits / temperature, axis=1), labels=plain.classes_)  # noqa: E731
    assert t != 1.0 and loss(t) <= min(loss(t * 1.1), loss(t / 1.1)) + 1e-6
    again = load_model(tmp_path / "m.skops")  # skops, with the trusted types only
    np.testing.assert_allclose(again.predict_proba(X_priv), pipe.predict_proba(X_priv), atol=1e-12)
    with pytest.raises(ValueError, match="--calibrate is for feature pipelines"):
        TrainSettings(clf="cnn", calibrate=True).check()
    with pytest.raises(ValueError, match="fer train"):
        TrainSettings(features="hog", clf="logreg", calibrate=True).check_cv()
    # a PublicTest without one of the Training classes cannot calibrate them: a data error, before a wrong model
    keep = ~((data.usage == "PublicTest") & (data.y == 1))
    partial = FERDataset(data.X[keep], data.y[keep], data.usage[keep], data.names[keep], "toy", "f")
    with pytest.raises(DataError, match="lacks"):
        train(partial, "hog", "logreg", pca=16, n_jobs=1, calibrate=True)


def test_train_without_out_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    pipe, card = train(toy_data(), "lbp", "logreg", pca=None, n_jobs=1)
    assert card.name == "model" and list(tmp_path.iterdir()) == []


def test_options_are_checked_before_data_is_read(tmp_path):
    missing = tmp_path / "nope.zip"
    with pytest.raises(ValueError, match="sift"):
        train(missing, "hog+sift", "svm")
    with pytest.raises(ValueError, match="--augment-shift needs --augment"):
        train(missing, "hog", "svm", augment_shift=2)
    with pytest.raises(DataError, match="nope.zip"):
        train(missing, "hog", "svm")
    with pytest.raises(ValueError, match="method"):  # a bad extractor parameter, before loading
        TrainSettings(features="lbp", feature_params={"lbp": {"method": "ror"}}).check()


def test_settings_defaults_come_from_config():
    s = TrainSettings()
    assert s.features == config.DEFAULT_FEATURES and s.clf == config.DEFAULT_CLASSIFIER and s.pca == config.DEFAULT_PCA
    assert s.cnn_params["epochs"] == config.CNN_EPOCHS
    assert TrainSettings(clf="cnn").features is None and TrainSettings(pca=0).pca is None
    assert class_weight_for("none") is None and class_weight_for(None, "weights") == "balanced"


def test_cross_validate_pipeline_matches_sklearn():
    from sklearn.model_selection import StratifiedKFold, cross_validate

    from fer_features.training.pipelines import build_pipeline

    data = toy_data()
    result = cross_validate_pipeline(data, "hog", "logreg", folds=3, pca=8, n_jobs=1, seed=2)
    X, y = data.split("Training")
    direct = cross_validate(build_pipeline("hog", "logreg", pca=8, n_jobs=1, random_state=2), X, y,
                            cv=StratifiedKFold(3, shuffle=True, random_state=2), scoring="accuracy")  # fmt: skip
    np.testing.assert_allclose([f["accuracy"] for f in result["per_fold"]], direct["test_score"])
    assert result["accuracy_mean"] == pytest.approx(np.mean(direct["test_score"]))
    with pytest.raises(ValueError, match="fer train --clf cnn"):
        cross_validate_pipeline(data, None, "cnn")


# --------------------------------------------------------------------------- names and defaults


def test_cli_choices_are_the_library_tuples():
    from fer_features.cli import common

    assert [e.value for e in common.Split] == list(config.USAGES)
    assert [e.value for e in common.DataFormat] == list(config.DATA_FORMATS)
    assert [e.value for e in common.Device] == list(config.DEVICES)
    assert [e.value for e in common.Detector] == list(DETECTORS)
    assert [e.value for e in common.Balance] == list(config.BALANCE_MODES)


def test_cnn_presets_are_the_choices_and_build():
    pytest.importorskip("torch")
    from fer_features.cli import common
    from fer_features.cnn.net import build_net
    from fer_features.cnn.presets import PRESETS

    assert [e.value for e in common.Preset] == list(PRESETS)
    for name, preset in PRESETS.items():
        assert build_net({**preset, "n_classes": 7}) is not None, name


def test_cache_dir_and_model_path_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(config.ENV_CACHE, str(tmp_path))
    assert config.default_cache_dir(config.BENCHMARK_CACHE) == tmp_path / "benchmark"
    monkeypatch.setenv(config.ENV_MODEL, str(tmp_path / "m.joblib"))
    from fer_features.persist.bundled import default_model_path

    assert default_model_path() == tmp_path / "m.joblib"


# --------------------------------------------------------------------------- layering


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def test_features_and_cnn_do_not_import_each_other_both_ways():
    """The CNN embedding (features/cnn.py) builds on cnn/; cnn/ takes only the crop checks from features/."""
    for path in (PACKAGE / "features").glob("*.py"):
        if path.name != "cnn.py":
            assert not any(m.startswith("fer_features.cnn") for m in _imports(path)), f"features/{path.name} imports cnn/"
    cnn = set().union(*(_imports(p) for p in (PACKAGE / "cnn").glob("*.py")))
    assert {m for m in cnn if m.startswith("fer_features.features")} <= {"fer_features.features.base"}
    torch_utils = _imports(PACKAGE / "torch_utils.py")
    assert not any(m.startswith("fer_features") and m not in ("fer_features.config", "fer_features.threads") for m in torch_utils)


def test_cli_commands_are_thin():
    """Each command is well under 60 lines, and the CLI holds no training, evaluation or card logic."""
    for path in (PACKAGE / "cli").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and any(
                isinstance(d, ast.Call) and getattr(d.func, "attr", "") == "command" for d in node.decorator_list
            ):
                length = node.end_lineno - node.lineno + 1
                assert length < 60, f"{path.name}: {node.name} has {length} lines"
        imported = _imports(path)
        assert not imported & {"sklearn.model_selection", "sklearn.metrics", "fer_features.training.pipelines"}, path.name
        source = path.read_text()
        for fragment in ("cross_validate(", ".fit(", "plot_confusion_matrix", "machine_info", "save_model"):
            assert fragment not in source, f"{path.name} does {fragment}"


def test_tests_import_nothing_private_from_the_cli():
    public = {"fer_features.cli.common", "fer_features.cli.interrupts"}  # options and errors; the documented Ctrl-C shield
    for path in Path(__file__).parent.rglob("test_*.py"):
        for module in _imports(path):
            assert not module.startswith("fer_features.cli.") or module in public, (path.name, module)
        assert "from fer_features.cli import " + "_" not in path.read_text()


def test_importing_the_package_and_the_cli_is_cheap():
    script = ("import sys, fer_features, fer_features.cli; "
              "print(sorted(m for m in ('torch', 'dlib', 'sklearn', 'pandas', 'cv2', 'matplotlib') if m in sys.modules))")  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_model_card_fields_are_the_json_keys():
    names = [f.name for f in dataclasses.fields(ModelCard)]
    assert set(ModelCard._ORDER) == set(names)


# --------------------------------------------------------------------------- the CNN as an estimator

TINY = {"widths": (4, 8, 8, 8), "convs_per_stage": 1, "embedding_dim": 16, "dropout": 0.0}


@pytest.fixture(scope="module")
def tiny_cnn():
    torch = pytest.importorskip("torch")
    from fer_features.cnn import CNNClassifier

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, (70, 48, 48), dtype=np.uint8)
    y = np.array(config.EMOTIONS)[np.arange(70) % 7]
    return CNNClassifier(net=TINY, epochs=1, batch_size=16, device="cpu").fit(X, y), X


def test_train_config_fields_are_estimator_parameters():
    pytest.importorskip("torch")
    from sklearn.base import clone

    from fer_features.cnn import CNNClassifier, TrainConfig

    params = CNNClassifier().get_params()
    assert {f.name for f in dataclasses.fields(TrainConfig)} <= set(params)
    assert params["epochs"] == TrainConfig().epochs == config.CNN_EPOCHS
    est = clone(CNNClassifier(lr=0.02, max_rotation=5.0, patience=3)).set_params(erasing=0.0)
    cfg = est.train_config()
    assert (cfg.lr, cfg.max_rotation, cfg.patience, cfg.erasing) == (0.02, 5.0, 3, 0.0)
    assert cfg.net == TrainConfig().net  # the preset's when not given


def test_from_checkpoint_gives_the_fitted_classifier(tiny_cnn, tmp_path):
    from fer_features.cnn import CNNClassifier, save_checkpoint

    clf, X = tiny_cnn
    path = save_checkpoint(clf.checkpoint_, tmp_path / "net.pt")
    loaded = CNNClassifier.from_checkpoint(path, device="cpu")
    np.testing.assert_array_equal(loaded.classes_, clf.classes_)
    np.testing.assert_allclose(loaded.predict_proba(X[:8]), clf.predict_proba(X[:8]), atol=2e-3)  # float16 weights
    assert loaded.net == TINY and loaded.epochs == 1


def test_a_gpu_model_on_a_machine_without_one_warns(tiny_cnn):
    torch = pytest.importorskip("torch")
    import pickle

    if torch.cuda.is_available():
        pytest.skip("checks the fallback without a CUDA GPU")
    clf, X = tiny_cnn
    gpu_made = pickle.loads(pickle.dumps(clf))
    gpu_made.device = "cuda"
    with pytest.warns(RuntimeWarning, match="made for device 'cuda'"):
        again = pickle.loads(pickle.dumps(gpu_made))
    assert again.device_.type == "cpu"
    np.testing.assert_allclose(again.predict_proba(X[:4]), clf.predict_proba(X[:4]), atol=1e-6)


def test_feature_dims_from_parameters_alone(tiny_cnn, tmp_path):
    from fer_features.cnn import save_checkpoint
    from fer_features.training.pipelines import feature_dims

    # no weights file, nothing fitted: VGG16's width follows from input_size
    assert feature_dims("hog+vgg16") == 1764 + 512
    assert feature_dims("vgg16", feature_params={"vgg16": {"input_size": 96}}) == 512 * 9
    path = save_checkpoint(tiny_cnn[0].checkpoint_, tmp_path / "net.pt")
    assert feature_dims("lbp+cnn", feature_params={"cnn": {"checkpoint": str(path)}}) == 2124 + 16
