"""fer_features.persist.files: skops and joblib files, refusing pickles and strangers' types, model checks,
output checks, staged outputs of one run, cards."""

from __future__ import annotations

import json
import os
import pickle

import joblib
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from fer_features.persist.bundled import default_model_path
from fer_features.persist.cards import card_path, library_versions, read_card
from fer_features.persist.files import ModelError, UnsafeModelError, load_model, model_format, save_model
from fer_features.persist.outputs import OutputError, atomic_path, check_writable, staged_outputs
from fer_features.persist.trust import trusted_types


def small_model(seed=0):
    """A fitted fer-features pipeline (HOG → PCA → logistic regression) on synthetic patterns, and its input."""
    from conftest import pattern_images

    from fer_features.training.pipelines import build_pipeline

    X, y = pattern_images(per_class=4, seed=seed)
    return build_pipeline("hog", "logreg", pca=5, n_jobs=1).fit(X, y), X


def leftovers(folder):
    """Temporary files (atomic_path's ``*.tmp``, staged outputs' ``*.tmp.SUFFIX``, write probes)."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_save_and_load_round_trip(tmp_path):
    model, X = small_model()
    path = tmp_path / "sub" / "m.skops"  # folders are created
    assert save_model(model, path, {"features": "hog", "metrics": {"accuracy": 0.5}}) == path
    assert model_format(path) == "skops"
    loaded = load_model(path)
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    card = json.loads(card_path(path).read_text())
    assert card_path(path) == tmp_path / "sub" / "m.json"
    assert card["features"] == "hog" and card["metrics"] == {"accuracy": 0.5} and card["format"] == "skops"
    assert card["library_versions"] == library_versions()
    assert "python" in card["library_versions"] and "scikit-learn" in card["library_versions"]
    assert read_card(path) == card
    assert leftovers(path.parent) == []


def test_save_without_card(tmp_path):
    model, _ = small_model()
    save_model(model, tmp_path / "m.skops")
    assert not (tmp_path / "m.json").exists()
    assert read_card(tmp_path / "m.skops") == {}


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
    np.testing.assert_array_equal(load_model(path, trusted=True).predict(X), first.predict(X))


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
        load_model(path, trusted=True)
    assert "x.joblib" in str(info.value)


# --------------------------------------------------------------------------- nothing run that the user did not write


class _RunsCodeWhenUnpickled:
    """A pickle payload that creates a file when loaded (as a hostile model file would run anything)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        import pathlib

        return pathlib.Path.touch, (pathlib.Path(self.marker),)


def test_a_pickle_that_runs_code_is_refused_by_default(tmp_path):
    """The issue's case: a joblib whose pickle runs code at load time. Refused, and the code does not run."""
    model, X = small_model()
    marker = tmp_path / "code-ran"
    path = tmp_path / "evil.joblib"
    joblib.dump({"model": model, "payload": _RunsCodeWhenUnpickled(marker)}, path)
    with pytest.raises(UnsafeModelError, match="pickle") as info:
        load_model(path)
    message = str(info.value)
    assert "run any code" in message and "--trust-pickle" in message and "\n" not in message
    assert not marker.exists()
    with pytest.raises(ModelError, match="holds a dict"):  # trusted: it runs (the user asked) but is no model
        load_model(path, trusted=True)
    assert marker.exists()


def test_a_pickled_pipeline_loads_when_trusted(tmp_path):
    model, X = small_model()
    path = save_model(model, tmp_path / "mine.joblib", {"features": "hog"})
    assert model_format(path) == "pickle" and read_card(path)["format"] == "pickle"
    with pytest.raises(UnsafeModelError):
        load_model(path)
    np.testing.assert_array_equal(load_model(path, trusted=True).predict_proba(X), model.predict_proba(X))


class StrangerTransformer(StandardScaler):
    """A type that is neither the project's nor scikit-learn's own."""


def test_a_skops_file_with_unknown_types_is_refused_naming_them(tmp_path):
    import skops.io as sio

    model, _ = small_model()
    model.steps.insert(1, ("extra", StrangerTransformer().fit(np.zeros((2, 1)))))
    path = tmp_path / "stranger.skops"
    sio.dump(model, path)
    with pytest.raises(UnsafeModelError, match="test_persist.StrangerTransformer") as info:
        load_model(path)
    assert "\n" not in str(info.value)


def test_a_broken_skops_file_is_a_model_error(tmp_path):
    model, _ = small_model()
    path = save_model(model, tmp_path / "m.skops")
    path.write_bytes(path.read_bytes()[:300])  # still starts like a zip
    with pytest.raises(ModelError, match="not a readable skops model file"):
        load_model(path)


@pytest.mark.parametrize("fmt", ["skops", "joblib"])
def test_another_sklearn_classifier_is_refused_at_load(tmp_path, fmt):
    """The issue's case: another scikit-learn classifier passed the check and failed later ("Found array with dim 3")."""
    rng = np.random.default_rng(0)
    other = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression())])
    other.fit(rng.normal(size=(40, 3)), np.repeat(["happy", "sad"], 20))
    path = save_model(other, tmp_path / f"other.{fmt}")
    with pytest.raises(ModelError, match="takes feature vectors, not 48x48 face crops") as info:
        load_model(path, trusted=True)
    assert "StandardScaler → LogisticRegression" in str(info.value)


def test_unknown_classes_are_refused(tmp_path):
    from conftest import pattern_images

    from fer_features.training.pipelines import build_pipeline

    X, y = pattern_images(per_class=3)
    animals = np.where(y == "happy", "cat", "dog")
    path = save_model(build_pipeline("hog", "logreg", pca=3, n_jobs=1).fit(X, animals), tmp_path / "animals.skops")
    with pytest.raises(ModelError, match=r"classes \['cat', 'dog'\] are not emotion names"):
        load_model(path)


def test_a_pipeline_for_other_crop_sizes_is_refused(tmp_path):
    from conftest import pattern_images

    from fer_features.training.pipelines import build_pipeline

    X, y = pattern_images(per_class=3, size=64)
    path = save_model(build_pipeline("hog", "logreg", pca=3, n_jobs=1).fit(X, y), tmp_path / "64px.skops")
    with pytest.raises(ModelError, match="a 48x48 face crop fails in it.*fitted on 64x64"):
        load_model(path)


def test_trusted_types_are_the_registries():
    """The trust list is derived: every registered extractor's own type is in it, and nothing else of the project's."""
    from fer_features.features import FEATURES
    from fer_features.heads.registry import HEADS

    for name in FEATURES:
        cls = type(FEATURES.create(name))
        qualified = f"{cls.__module__}.{cls.__qualname__}"
        if cls.__module__.startswith("fer_features."):
            assert qualified in FEATURES[name].types and qualified in trusted_types(), name
    ours = {t for t in trusted_types() if t.startswith("fer_features.")}
    assert ours == FEATURES.types() | HEADS.types()


def test_library_types_are_exactly_what_the_heads_need(tmp_path):
    """Each head's pipeline saves and loads; the scikit-learn types it holds are those its registry entry names."""
    import skops.io as sio
    from conftest import pattern_images

    from fer_features.heads.registry import CALIBRATION_TYPES, HEADS
    from fer_features.training.pipelines import build_pipeline

    X, y = pattern_images(per_class=12)
    for clf, params in (("svm", None), ("linear-svm", None), ("gbm", {"max_iter": 3}), ("logreg", None), ("stacked-svm", None)):
        pipe = build_pipeline("hog", clf, pca=5, n_jobs=1, clf_params=params).fit(X, y)
        path = save_model(pipe, tmp_path / f"{clf}.skops")
        needed = {t for t in sio.get_untrusted_types(file=path) if not t.startswith("fer_features.")}
        assert needed == set(HEADS[clf].library_types), clf
        np.testing.assert_array_equal(load_model(path).predict_proba(X[::7]), pipe.predict_proba(X[::7]))
    assert set(CALIBRATION_TYPES) <= trusted_types()


# --------------------------------------------------------------------------- outputs checked first, written together


def test_check_writable(tmp_path):
    regular = tmp_path / "file.txt"
    regular.write_text("x")
    assert check_writable(tmp_path / "new" / "deeper" / "m.skops") == tmp_path / "new" / "deeper" / "m.skops"
    assert not (tmp_path / "new").exists()  # nothing is created
    with pytest.raises(OutputError, match=f"--out {regular}/m.skops: {regular} is a file, not a folder"):
        check_writable(regular / "m.skops")
    with pytest.raises(OutputError, match="is a folder; give a file name"):
        check_writable(tmp_path)
    with pytest.raises(OutputError, match="--results-dir .*: is a file, not a folder"):
        check_writable(regular, folder=True, option="--results-dir")
    assert leftovers(tmp_path) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into any folder")
def test_check_writable_unwritable_folder(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(OutputError, match="cannot write in"):
            check_writable(locked / "m.skops")
    finally:
        locked.chmod(0o700)


def test_check_writable_when_the_folder_refuses(tmp_path, monkeypatch):
    """What a read-only or foreign folder does (also under root): the probe file cannot be created."""
    import tempfile

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(OutputError, match=r"--plot .*: cannot write in .* \(Permission denied\)"):
        check_writable(tmp_path / "cm.png", option="--plot")


def write_set(folder, version):
    with staged_outputs() as stage:
        for name in ("m.skops", "m.json", "m.confusion.png"):
            stage.path(folder / name).write_text(f"{name} v{version}")


def test_staged_outputs_move_together(tmp_path):
    write_set(tmp_path, 1)
    assert sorted(p.read_text() for p in tmp_path.iterdir()) == ["m.confusion.png v1", "m.json v1", "m.skops v1"]

    with pytest.raises(KeyboardInterrupt):  # interrupted after two of the three files were written
        with staged_outputs() as stage:
            stage.path(tmp_path / "m.confusion.png").write_text("new")
            stage.path(tmp_path / "m.skops").write_text("new")
            raise KeyboardInterrupt
    assert sorted(p.read_text() for p in tmp_path.iterdir()) == ["m.confusion.png v1", "m.json v1", "m.skops v1"]
    assert leftovers(tmp_path) == []


def test_ctrl_c_while_moving_waits_for_the_whole_set(tmp_path, monkeypatch):
    import signal

    write_set(tmp_path, 1)
    real_replace = os.replace
    calls = []
    before = signal.getsignal(signal.SIGINT)  # the default handler, or SIG_IGN in a background job

    def replace_and_interrupt(src, dst):
        if not calls:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C right after the first file moved
        calls.append(dst)
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace_and_interrupt)
    with pytest.raises(KeyboardInterrupt):
        write_set(tmp_path, 2)
    assert len(calls) == 3
    assert sorted(p.read_text() for p in tmp_path.iterdir()) == ["m.confusion.png v2", "m.json v2", "m.skops v2"]
    assert signal.getsignal(signal.SIGINT) == before  # the handler is given back


def test_save_model_writes_extras_with_the_model_or_not_at_all(tmp_path, monkeypatch):
    model, X = small_model()
    path = tmp_path / "m.skops"
    save_model(model, path, {"v": 1}, extras={tmp_path / "m.confusion.png": lambda p: p.write_text("plot v1")})
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert sorted(before) == ["m.confusion.png", "m.json", "m.skops"]

    def broken_plot(p):
        p.write_text("half a plot")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        save_model(small_model(1)[0], path, {"v": 2}, extras={tmp_path / "m.confusion.png": broken_plot})
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_a_skops_file_saved_before_the_sub_packages_still_loads(tmp_path):
    """Type paths of fer-features 0.2.0 (fer_features.heads.MLPHead, …) are renamed on read, then trusted."""
    import io
    import zipfile

    from conftest import pattern_images

    from fer_features.persist.trust import OLD_TYPE_PATHS
    from fer_features.training.pipelines import build_pipeline

    X, y = pattern_images(per_class=12)
    pipe = build_pipeline("hog", "mlp", pca=5, n_jobs=1, clf_params={"hidden_layer_sizes": (8,), "max_iter": 20}).fit(X, y)
    path = save_model(pipe, tmp_path / "new.skops")
    new_to_old = {new: old for old, new in OLD_TYPE_PATHS.items()}
    with zipfile.ZipFile(path) as zf:
        members = {info.filename: zf.read(info) for info in zf.infolist()}

    def to_old(node):
        if isinstance(node, dict):
            name = f"{node.get('__module__')}.{node.get('__class__')}"
            if name in new_to_old:
                node["__module__"], _, node["__class__"] = new_to_old[name].rpartition(".")
            for value in node.values():
                to_old(value)
        elif isinstance(node, list):
            for value in node:
                to_old(value)

    tree = json.loads(members["schema.json"])
    to_old(tree)
    schema = json.dumps(tree)
    assert "fer_features.heads.estimators" not in schema and "fer_features.heads" in schema  # the old module
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, content in members.items():
            zf.writestr(name, schema if name == "schema.json" else content)
    old = tmp_path / "old.skops"
    old.write_bytes(buf.getvalue())
    np.testing.assert_array_equal(load_model(old).predict_proba(X[::7]), pipe.predict_proba(X[::7]))
