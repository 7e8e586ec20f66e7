"""The CNN: embedding transformer, end-to-end classifier, training (determinism, resume,
augmentation) and the ``fer train`` / ``fer predict`` paths that use it.

Everything runs on tiny networks (widths 4-8-8-8, a 16-d embedding) or on a few hundred
images, on one torch thread: on a 2-core machine shared with a busy job, two intra-op
threads make these small networks 10-20x slower, and results do not depend on the count.
"""

from __future__ import annotations

import copy
import json
import os
import pickle

import joblib
import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")

from conftest import TINY, assert_user_error, fer, make_checkpoint

import fer_features.cnn.loop as train_mod  # noqa: E402
import fer_features.torch_utils as torch_utils  # noqa: E402
from fer_features.cnn.checkpoints import CHECKPOINT_FORMAT, load_checkpoint, save_checkpoint
from fer_features.cnn.classifier import CNNClassifier  # noqa: E402
from fer_features.cnn.loop import train_cnn
from fer_features.cnn.net import build_net  # noqa: E402
from fer_features.cnn.presets import PRESETS  # noqa: E402
from fer_features.cnn.recipe import TrainConfig, augment
from fer_features.config import EMOTIONS  # noqa: E402
from fer_features.features.cnn import CNNEmbedding
from fer_features.torch_utils import resolve_device  # noqa: E402

EMBED_DIM = TINY["embedding_dim"]
HOG_DIM = 1764  # HOG of a 48x48 crop: 9 orientations, 6x6 cells, 3x3 blocks

_set_cpu_threads = train_mod.set_cpu_threads  # the real one, before the fixture below replaces it
no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the behaviour without a CUDA GPU")


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """One intra-op torch thread, and stop the package from raising it to every core."""
    threads = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(train_mod, "set_cpu_threads", lambda *a: None)
        mp.setattr(torch_utils, "set_cpu_threads", lambda *a: None)
        torch.set_num_threads(1)
        yield
    torch.set_num_threads(threads)


def random_faces(n: int, seed: int = 0, size: int = 48) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size), dtype=np.uint8)


def random_labels(n: int, seed: int = 0) -> np.ndarray:
    """Class indices 0..6 with every class present."""
    y = np.random.default_rng(seed + 100).integers(0, 7, n)
    y[:7] = np.arange(7)
    return y


def tiny_config(**kwargs) -> TrainConfig:
    kwargs.setdefault("net", dict(TINY))
    return TrainConfig(**{"epochs": 2, "batch_size": 16, **kwargs})


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"tensors differ: {different}"


def without_seconds(history: list[dict]) -> list[dict]:
    timed = {"seconds", "augment_seconds", "step_seconds", "val_seconds"}
    return [{k: v for k, v in rec.items() if k not in timed} for rec in history]


@pytest.fixture(scope="module")
def ckpt_path(tmp_path_factory):
    return save_checkpoint(make_checkpoint(), tmp_path_factory.mktemp("ckpt") / "tiny.pt")


@pytest.fixture(scope="module")
def faces():
    return random_faces(40, seed=1)


@pytest.fixture(scope="module")
def embedder(ckpt_path, faces):
    return CNNEmbedding(checkpoint=str(ckpt_path), device="cpu", precision="fp32").fit(faces)


# --------------------------------------------------------------------------- CNNEmbedding


def test_embedding_shape_dtype_and_names(embedder, faces):
    Z = embedder.transform(faces)
    assert Z.shape == (len(faces), EMBED_DIM) and Z.dtype == np.float32
    assert np.isfinite(Z).all() and (Z >= 0).all()  # after the ReLU
    assert np.ptp(Z, axis=0).max() > 0  # depends on the image
    assert list(embedder.get_feature_names_out()) == [f"cnn{i}" for i in range(EMBED_DIM)]
    assert embedder.image_shape_ == (48, 48)
    assert embedder.device_ == torch.device("cpu")
    assert all(p.dtype == torch.float32 for p in embedder.module_.parameters())  # fp16 checkpoint → fp32
    assert not embedder.module_.training


def test_embedding_is_the_standardised_penultimate_layer(embedder, faces, ckpt_path):
    ckpt = load_checkpoint(ckpt_path)
    net = build_net({**ckpt["config"]["net"], "n_classes": 7})
    net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in ckpt["state_dict"].items()})
    net.eval()
    x = (torch.from_numpy(faces).float() / 255.0 - ckpt["mean"]) / ckpt["std"]
    with torch.no_grad():
        expected = net.embed(x[:, None]).numpy()
    np.testing.assert_allclose(embedder.transform(faces), expected, rtol=1e-5, atol=1e-5)


def test_flip_embedding_is_the_mean_of_the_face_and_its_mirror(embedder, faces, ckpt_path):
    flip = CNNEmbedding(checkpoint=str(ckpt_path), device="cpu", precision="fp32", tta="flip").fit(faces)
    expected = (embedder.transform(faces) + embedder.transform(faces[:, :, ::-1].copy())) / 2
    Z = flip.transform(faces)
    np.testing.assert_allclose(Z, expected, rtol=1e-5, atol=1e-5)
    assert not np.allclose(Z, embedder.transform(faces), atol=1e-3)  # the mirror does change it
    np.testing.assert_allclose(flip.transform(faces[:, :, ::-1].copy()), Z, rtol=1e-5, atol=1e-5)  # mirror-invariant
    assert list(flip.get_feature_names_out()) == list(embedder.get_feature_names_out())


def test_embedding_rejects_an_unknown_tta(ckpt_path, faces):
    with pytest.raises(ValueError, match="unknown TTA mode 'mirror'.*none, flip, ten-crop"):
        CNNEmbedding(checkpoint=str(ckpt_path), tta="mirror").fit(faces)


def test_embedding_does_not_depend_on_batch_size(ckpt_path):
    X = random_faces(530, seed=2)  # more than one 512-image chunk of FaceImageTransformer
    outs = [
        CNNEmbedding(checkpoint=str(ckpt_path), device="cpu", batch_size=b, precision="fp32").fit(X).transform(X)
        for b in (1, 64, 1000)
    ]
    np.testing.assert_allclose(outs[0], outs[1], atol=1e-5)
    np.testing.assert_allclose(outs[0], outs[2], atol=1e-5)


def test_embedding_pickle_round_trip(embedder, faces, tmp_path):
    expected = embedder.transform(faces)
    state = embedder.__getstate__()
    assert "module_" not in state and "device_" not in state
    assert state["_module_state"].keys() == embedder.module_.state_dict().keys()
    for k, v in state["_module_state"].items():
        assert type(v) is np.ndarray  # plain arrays, no torch objects: skops can save them
        expected_k = embedder.module_.state_dict()[k].cpu()
        assert torch.equal(torch.from_numpy(v).to(expected_k.dtype), expected_k)

    again = pickle.loads(pickle.dumps(embedder))
    np.testing.assert_array_equal(again.transform(faces), expected)
    assert not again.module_.training
    joblib.dump(embedder, tmp_path / "emb.joblib")
    np.testing.assert_array_equal(joblib.load(tmp_path / "emb.joblib").transform(faces), expected)
    assert list(again.get_feature_names_out()) == list(embedder.get_feature_names_out())


@no_gpu
def skops_round_trip(obj):
    """``obj`` through skops.io, trusting exactly what fer_features.persist.files trusts."""
    import skops.io as sio

    from fer_features.persist.trust import trusted_types

    data = sio.dumps(obj)
    untrusted = sio.get_untrusted_types(data=data)
    assert set(untrusted) <= trusted_types(), untrusted
    assert not [t for t in untrusted if t.startswith("torch")]
    return sio.loads(data, trusted=untrusted)


def test_embedding_skops_round_trip(embedder, faces):
    again = skops_round_trip(embedder)
    np.testing.assert_array_equal(again.transform(faces), embedder.transform(faces))
    assert not again.module_.training and again.device_ == torch.device("cpu")
    assert list(again.get_feature_names_out()) == list(embedder.get_feature_names_out())


def test_weights_that_are_float16_values_are_saved_as_float16_and_load_exactly(embedder, faces):
    """Half-precision checkpoints: their weights take half the space in a model file, and nothing changes."""
    half = copy.deepcopy(embedder)
    with torch.no_grad():
        for p in half.module_.parameters():
            p.copy_(p.half().float())  # every value now a float16, as in a checkpoint saved in half precision
    state = half.__getstate__()
    weights = [v for k, v in state["_module_state"].items() if k.endswith("weight")]
    assert weights and all(v.dtype == np.float16 for v in weights)
    full = copy.deepcopy(half)
    with torch.no_grad():
        next(full.module_.parameters()).mul_(1 + 2**-20)  # values a float16 cannot hold: kept as float32, exactly
    kept = full.__getstate__()["_module_state"][next(iter(full.module_.state_dict()))]
    assert kept.dtype == np.float32
    np.testing.assert_array_equal(kept, next(full.module_.parameters()).detach().cpu().numpy())
    again = skops_round_trip(half)
    for k, v in half.module_.state_dict().items():
        assert again.module_.state_dict()[k].dtype == v.dtype and torch.equal(again.module_.state_dict()[k], v)
    np.testing.assert_array_equal(again.transform(faces), half.transform(faces))


def test_pickle_of_the_old_format_still_loads(embedder, faces):
    """Pickles written before the weights became numpy arrays held torch tensors: they load too."""
    state = embedder.__getstate__()
    state["_module_state"] = {k: torch.from_numpy(v) for k, v in state["_module_state"].items()}
    old = CNNEmbedding.__new__(CNNEmbedding)
    old.__setstate__(state)
    np.testing.assert_array_equal(old.transform(faces), embedder.transform(faces))


def test_embedding_pickled_for_cuda_loads_on_cpu(embedder, faces):
    gpu_model = pickle.loads(pickle.dumps(embedder))
    gpu_model.set_params(device="cuda")  # as if fitted on a GPU machine
    loaded = pickle.loads(pickle.dumps(gpu_model))
    assert loaded.device == "cuda"  # the parameter is kept ...
    assert loaded.device_ == torch.device("cpu")  # ... but the module lives where it can
    assert next(loaded.module_.parameters()).device.type == "cpu"
    np.testing.assert_array_equal(loaded.transform(faces), embedder.transform(faces))


@no_gpu
def test_resolve_device_without_gpu():
    if getattr(torch.backends, "mps", None) is None or not torch.backends.mps.is_available():
        assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="no CUDA GPU") as info:
        resolve_device("cuda")
    assert "auto" in str(info.value) and "cpu" in str(info.value)


@no_gpu
def test_embedding_fit_on_missing_cuda_says_so(ckpt_path, faces):
    with pytest.raises(ValueError, match="CUDA"):
        CNNEmbedding(checkpoint=str(ckpt_path), device="cuda").fit(faces)


def test_embedding_missing_checkpoint(tmp_path, faces):
    with pytest.raises(FileNotFoundError, match="fer train") as info:
        CNNEmbedding(checkpoint=str(tmp_path / "nope.pt")).fit(faces)
    assert "nope.pt" in str(info.value)


def test_embedding_needs_a_checkpoint(faces):
    with pytest.raises(ValueError, match="checkpoint") as info:
        CNNEmbedding().fit(faces)
    assert "fer train" in str(info.value)


def test_embedding_rejects_files_that_are_not_checkpoints(tmp_path, faces):
    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint")
    with pytest.raises(ValueError, match="notes.pt"):
        CNNEmbedding(checkpoint=str(text)).fit(faces)

    other = tmp_path / "other.pt"
    torch.save({"state_dict": {}, "format": "something-else"}, other)
    with pytest.raises(ValueError, match="not a fer-features CNN checkpoint"):
        CNNEmbedding(checkpoint=str(other)).fit(faces)

    tensor = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), tensor)
    with pytest.raises(ValueError, match="tensor.pt"):
        load_checkpoint(tensor)


def test_embedding_rejects_other_image_sizes(embedder):
    with pytest.raises(ValueError, match="48x48"):
        embedder.transform(random_faces(2, size=32))


def test_checkpoint_round_trip(tmp_path):
    ckpt = make_checkpoint(seed=3)
    loaded = load_checkpoint(save_checkpoint(ckpt, tmp_path / "sub" / "c.pt"))
    assert loaded["format"] == CHECKPOINT_FORMAT and loaded["config"] == ckpt["config"]
    assert_same_weights(loaded["state_dict"], ckpt["state_dict"])
    assert not list((tmp_path / "sub").glob("*.tmp"))  # written atomically


def test_set_cpu_threads_uses_every_available_core(monkeypatch):
    import os

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    try:
        torch.set_num_threads(1)
        _set_cpu_threads()
        assert torch.get_num_threads() == len(os.sched_getaffinity(0))
    finally:
        torch.set_num_threads(1)


def test_set_cpu_threads_leaves_an_explicit_omp_num_threads_alone(monkeypatch):
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs at least 2 cores to tell the two apart")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    try:
        torch.set_num_threads(1)
        _set_cpu_threads()
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(1)


# --------------------------------------------------------------------------- the cnn feature in pipelines


def test_hog_plus_cnn_feature_union(ckpt_path, patterns, embedder):
    from sklearn.pipeline import FeatureUnion

    from fer_features.features import make_features
    from fer_features.training.pipelines import feature_dims

    params = {"cnn": {"checkpoint": str(ckpt_path), "device": "cpu", "precision": "fp32"}}
    union = make_features("hog+cnn", params=params)
    assert isinstance(union, FeatureUnion)
    assert [name for name, _ in union.transformer_list] == ["hog", "cnn"]
    X, _ = patterns
    F = union.fit_transform(X[:30])
    assert F.shape == (30, HOG_DIM + EMBED_DIM) and F.dtype == np.float32
    names = union.get_feature_names_out()
    assert names[0] == "hog__hog0" and names[-1] == f"cnn__cnn{EMBED_DIM - 1}"
    np.testing.assert_array_equal(F[:, HOG_DIM:], embedder.transform(X[:30]))
    assert feature_dims("hog+cnn", feature_params=params) == HOG_DIM + EMBED_DIM


def test_hog_plus_cnn_pipeline_fits_and_predicts(ckpt_path, patterns):
    from fer_features.training.pipelines import build_pipeline

    X, labels = patterns
    pipe = build_pipeline("hog+cnn", "logreg", pca=20, feature_params={"cnn": {"checkpoint": str(ckpt_path)}})
    pipe.fit(X, labels)
    assert list(pipe.classes_) == sorted(EMOTIONS)
    predicted = pipe.predict(X[::10])
    assert set(predicted) <= set(EMOTIONS)
    proba = pipe.predict_proba(X[::10])
    # float32 features: BLAS may round differently on the copy (measured: 5e-6 relative)
    np.testing.assert_allclose(pickle.loads(pickle.dumps(pipe)).predict_proba(X[::10]), proba, rtol=1e-4, atol=1e-7)


@no_gpu
def test_hog_plus_cnn_pipeline_skops_round_trip(ckpt_path, patterns, tmp_path):
    """A CNN-based pipeline saved as .skops loads (checked as a fer-features pipeline) and predicts the same."""
    from fer_features.persist.files import load_model, model_format, save_model
    from fer_features.training.pipelines import build_pipeline

    X, labels = patterns
    copy = tmp_path / "cnn.pt"
    copy.write_bytes(ckpt_path.read_bytes())
    pipe = build_pipeline("hog+cnn", "logreg", pca=20, feature_params={"cnn": {"checkpoint": str(copy)}}).fit(X, labels)
    path = save_model(pipe, tmp_path / "hog-cnn.skops")
    assert model_format(path) == "skops"
    copy.unlink()  # the weights are inside the model file: the checkpoint is not read again
    loaded = load_model(path)
    np.testing.assert_array_equal(loaded.predict(X[::5]), pipe.predict(X[::5]))
    np.testing.assert_allclose(loaded.predict_proba(X[::5]), pipe.predict_proba(X[::5]), rtol=1e-4, atol=1e-7)


def test_cnn_head_takes_no_features():
    from fer_features.heads.registry import make_classifier
    from fer_features.training.pipelines import build_pipeline

    pipe = build_pipeline(None, "cnn", clf_params={"preset": "small", "epochs": 1})
    assert [name for name, _ in pipe.steps] == ["clf"]
    assert isinstance(pipe.named_steps["clf"], CNNClassifier) and pipe.named_steps["clf"].epochs == 1
    with pytest.raises(ValueError, match="pixels"):
        build_pipeline("hog", "cnn")
    with pytest.raises(ValueError, match="class_weight"):
        make_classifier("cnn", class_weight="balanced")


def test_unknown_preset():
    with pytest.raises(ValueError, match="small, compact, medium, large"):
        TrainConfig(preset="huge")
    assert TrainConfig(preset="large").net == PRESETS["large"]


# --------------------------------------------------------------------------- CNNClassifier on real faces


@pytest.fixture(scope="module")
def real_small(real_data):
    """About 300 stratified Training and 100 PublicTest crops of the real data set."""
    from sklearn.model_selection import train_test_split

    X_train, y_train = real_data.split("Training")
    X_val, y_val = real_data.split("PublicTest")
    tr, _ = train_test_split(np.arange(len(y_train)), train_size=300, stratify=y_train, random_state=0)
    va, _ = train_test_split(np.arange(len(y_val)), train_size=100, stratify=y_val, random_state=0)
    return X_train[tr], y_train[tr], X_val[va], y_val[va]


@pytest.fixture(scope="module")
def tiny_preset():
    """A ``tiny`` entry in PRESETS (which TrainConfig reads) while this module runs."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(PRESETS, "tiny", dict(TINY))
        yield "tiny"


@pytest.fixture(scope="module")
def fitted_clf(real_small, tiny_preset):
    X, y, X_val, y_val = real_small
    records = []
    clf = CNNClassifier(preset=tiny_preset, epochs=2, batch_size=32, device="cpu", seed=0)
    clf.fit(X, y, X_val=X_val, y_val=y_val, on_epoch=records.append)
    return clf, records


def test_classifier_fit_and_predict(fitted_clf, real_small):
    clf, _ = fitted_clf
    X, _, X_val, _ = real_small
    np.testing.assert_array_equal(clf.classes_, sorted(EMOTIONS))
    proba = clf.predict_proba(X_val)
    assert proba.shape == (len(X_val), 7) and proba.dtype == np.float64
    assert (proba >= 0).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
    np.testing.assert_array_equal(clf.predict(X_val), clf.classes_[proba.argmax(axis=1)])
    assert clf.image_shape_ == (48, 48) and clf.n_classes_ == 7


def test_classifier_checkpoint(fitted_clf, real_small):
    clf, records = fitted_clf
    _, _, X_val, y_val = real_small
    ckpt = clf.checkpoint_
    history = ckpt["history"]
    assert [rec["epoch"] for rec in history] == [1, 2]
    assert history == records  # on_epoch saw every record
    assert 0.0 <= ckpt["val_accuracy"] <= 1.0
    assert ckpt["val_accuracy"] == pytest.approx(max(rec["val_accuracy"] for rec in history), abs=5e-5)
    best = max(range(2), key=lambda i: history[i]["val_accuracy"])
    assert ckpt["best_epoch"] == best + 1
    # the kept weights are the best epoch's: they score (to float16 rounding) what was recorded
    assert clf.score(X_val, y_val) == pytest.approx(ckpt["val_accuracy"], abs=0.03)
    assert ckpt["classes"] == sorted(EMOTIONS) and ckpt["n_classes"] == 7
    floats = [v for v in ckpt["state_dict"].values() if v.is_floating_point()]
    assert floats and all(v.dtype == torch.float16 for v in floats)
    assert all(v.device.type == "cpu" for v in ckpt["state_dict"].values())
    assert ckpt["config"]["net"] == TINY and ckpt["config"]["epochs"] == 2
    assert ckpt["device"] == "cpu" and ckpt["train_seconds"] >= 0
    for rec in history:
        assert rec["loss"] > 0 and rec["lr"] > 0


def test_classifier_tta_averages_image_and_mirror_logits(fitted_clf, real_small):
    clf, _ = fitted_clf
    X_val = real_small[2][:40]
    plain = clf.predict_proba(X_val)
    tta_clf = pickle.loads(pickle.dumps(clf)).set_params(tta=True)
    with_tta = tta_clf.predict_proba(X_val)
    assert with_tta.shape == plain.shape
    np.testing.assert_allclose(with_tta.sum(axis=1), 1.0, atol=1e-9)

    logits = (clf._logits(X_val) + clf._logits(np.ascontiguousarray(X_val[:, :, ::-1]))) / 2
    expected = np.exp(logits - logits.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(with_tta, expected, rtol=1e-5, atol=1e-6)
    assert np.abs(with_tta - plain).max() > 1e-6


def test_classifier_pickle_round_trip(fitted_clf, real_small, tmp_path):
    clf, _ = fitted_clf
    X_val = real_small[2]
    expected = clf.predict_proba(X_val)
    state = clf.__getstate__()
    assert "checkpoint_" not in state and "module_" not in state
    assert all(type(v) is np.ndarray for v in state["_module_state"].values())
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict_proba(X_val), expected)
    np.testing.assert_array_equal(again.classes_, clf.classes_)
    joblib.dump(clf, tmp_path / "clf.joblib")
    np.testing.assert_array_equal(joblib.load(tmp_path / "clf.joblib").predict_proba(X_val), expected)
    np.testing.assert_array_equal(skops_round_trip(clf).predict_proba(X_val), expected)


def test_classifier_holds_out_validation_itself(real_small, tiny_preset):
    X, y, _, _ = real_small
    clf = CNNClassifier(preset=tiny_preset, epochs=1, batch_size=32, device="cpu", validation_fraction=0.2)
    clf.fit(X[:150], y[:150])
    assert len(clf.checkpoint_["history"]) == 1
    assert clf.predict(X[:5]).shape == (5,)


def test_classifier_rejects_unknown_validation_labels(real_small):
    X, y, X_val, _ = real_small
    with pytest.raises(ValueError, match="validation labels"):
        CNNClassifier(epochs=1).fit(X[:20], np.full(20, "happy"), X_val=X_val[:5], y_val=np.full(5, "sad"))


def test_classifier_rejects_bad_images():
    with pytest.raises(ValueError, match="uint8"):
        CNNClassifier(epochs=1).fit(np.zeros((10, 48, 48), np.float32), np.arange(10) % 2)


# --------------------------------------------------------------------------- training: determinism


@pytest.fixture(scope="module")
def tiny_data():
    return random_faces(96, seed=4), random_labels(96, seed=4), random_faces(40, seed=5), random_labels(40, seed=5)


def test_training_is_deterministic(tiny_data):
    a = train_cnn(*tiny_data, config=tiny_config(seed=7), device="cpu")
    b = train_cnn(*tiny_data, config=tiny_config(seed=7), device="cpu")
    assert_same_weights(a["state_dict"], b["state_dict"])
    assert without_seconds(a["history"]) == without_seconds(b["history"])
    assert (a["mean"], a["std"], a["best_epoch"]) == (b["mean"], b["std"], b["best_epoch"])

    other = train_cnn(*tiny_data, config=tiny_config(seed=8), device="cpu")
    assert any(not torch.equal(a["state_dict"][k], other["state_dict"][k]) for k in a["state_dict"])


def test_training_standardises_with_training_statistics(tiny_data):
    X = tiny_data[0]
    ckpt = train_cnn(*tiny_data, config=tiny_config(epochs=1), device="cpu")
    assert ckpt["mean"] == pytest.approx(X.mean() / 255.0)
    assert ckpt["std"] == pytest.approx(X.std() / 255.0)
    assert ckpt["n_classes"] == 7


def test_training_with_fewer_images_than_batch_size_still_learns(tiny_data):
    X, y, X_val, y_val = tiny_data
    # one step only, and one-cycle starts at lr / 25: a large peak makes that step visible in fp16
    cfg = tiny_config(epochs=1, batch_size=64, lr=5.0)
    ckpt = train_cnn(X[:40], y[:40], X_val, y_val, config=cfg, device="cpu")
    torch.manual_seed(cfg.seed)  # train_cnn seeds, then builds the network: its initial weights
    initial = build_net({**cfg.net, "n_classes": 7}).state_dict()
    conv = "features.0.weight"
    assert not torch.equal(ckpt["state_dict"][conv], initial[conv].half()), "no optimizer step was taken"
    assert ckpt["history"][0]["loss"] > 0


# --------------------------------------------------------------------------- training: resume


class Interrupted(Exception):
    """Stands for Ctrl-C in the middle of training."""


@pytest.fixture
def val_counter(monkeypatch, tiny_data):
    """Make the k-th validation pass of training score k/10, so the best epoch is the last.

    Then a checkpoint holds the final weights, and comparing them tests a whole run. Returns
    ``reset(k=0)``, which sets how many validation passes count as done.
    """
    y_val = torch.as_tensor(tiny_data[3], dtype=torch.long)
    calls = [0]

    def fake_predict_logits(net, X, device, batch_size=512, tta=False, **kwargs):
        assert len(X) == len(y_val)
        calls[0] += 1
        k = min(len(y_val), calls[0] * len(y_val) // 10)
        pred = (y_val + 1) % 7
        pred[:k] = y_val[:k]
        return torch.nn.functional.one_hot(pred, 7).float()

    monkeypatch.setattr(train_mod, "predict_logits", fake_predict_logits)

    def reset(k=0):
        calls[0] = k

    return reset


def interrupted_run(data, cfg, resume_path, at_epoch=2, **kwargs):
    """Train until ``at_epoch``'s record arrives, then stop as Ctrl-C would; the records seen (``kwargs``: more of train_cnn's)."""
    records = []

    def on_epoch(rec):
        records.append(rec)
        if rec["epoch"] == at_epoch:
            raise Interrupted

    with pytest.raises(Interrupted):
        train_cnn(*data, config=cfg, device="cpu", resume_path=resume_path, on_epoch=on_epoch, **kwargs)
    return records


def check_resume(data, cfg, tmp_path, reset):
    reset()
    full = train_cnn(*data, config=cfg, device="cpu")
    assert full["best_epoch"] == 3  # rising validation accuracy: the final weights are kept

    resume = tmp_path / "run.resume.pt"
    reset()
    seen = interrupted_run(data, cfg, resume, at_epoch=2)
    assert resume.is_file(), "no resume file after the first epoch"
    assert torch.load(resume, weights_only=False)["state"]["epoch"] == 1  # epoch 2 died before its save

    reset(1)  # the resumed run's validation passes are the 2nd and 3rd
    trained = []
    resumed = train_cnn(*data, config=cfg, device="cpu", resume_path=resume, on_epoch=trained.append)
    assert not resume.exists(), "the resume file is removed when training ends"
    assert [rec["epoch"] for rec in trained] == [2, 3]  # epoch 1 was not redone ...
    assert [rec["epoch"] for rec in resumed["history"]] == [1, 2, 3]
    assert resumed["history"][0] == seen[0]  # ... but is in the history, as recorded
    assert without_seconds(resumed["history"]) == without_seconds(full["history"])
    assert_same_weights(resumed["state_dict"], full["state_dict"])
    assert resumed["best_epoch"] == full["best_epoch"] and resumed["val_accuracy"] == full["val_accuracy"]


def test_resume_after_interruption_equals_uninterrupted_run(tiny_data, tmp_path, val_counter):
    check_resume(tiny_data, tiny_config(epochs=3), tmp_path, val_counter)


def test_resume_with_dropout_equals_uninterrupted_run(tiny_data, tmp_path, val_counter):
    check_resume(tiny_data, tiny_config(epochs=3, net={**TINY, "dropout": 0.3}), tmp_path, val_counter)


def test_resume_with_ema_and_mixup_equals_uninterrupted_run(tiny_data, tmp_path, val_counter):
    check_resume(tiny_data, tiny_config(epochs=3, ema=0.9, mixup=0.4, cutmix=0.4), tmp_path, val_counter)


def test_resume_file_of_another_config_is_ignored(tiny_data, tmp_path, val_counter):
    resume = tmp_path / "run.resume.pt"
    val_counter()
    interrupted_run(tiny_data, tiny_config(epochs=3, lr=0.05), resume)
    assert resume.is_file()

    other = tiny_config(epochs=3, lr=0.02)
    val_counter()
    fresh = train_cnn(*tiny_data, config=other, device="cpu")
    val_counter()
    trained = []
    result = train_cnn(*tiny_data, config=other, device="cpu", resume_path=resume, on_epoch=trained.append)
    assert [rec["epoch"] for rec in trained] == [1, 2, 3]  # started from epoch 1
    assert without_seconds(result["history"]) == without_seconds(fresh["history"])
    assert_same_weights(result["state_dict"], fresh["state_dict"])
    assert not resume.exists()


def test_resume_file_of_other_training_data_is_not_resumed(tiny_data, tmp_path, val_counter):
    X, y, X_val, y_val = tiny_data
    cfg = tiny_config(epochs=3)
    resume = tmp_path / "run.resume.pt"
    val_counter()
    interrupted_run((X[:40], y[:40], X_val, y_val), cfg, resume)  # e.g. `fer train --limit ...`, Ctrl-C
    val_counter()
    fresh = train_cnn(*tiny_data, config=cfg, device="cpu")
    val_counter()
    result = train_cnn(*tiny_data, config=cfg, device="cpu", resume_path=resume)  # then the full run
    assert without_seconds(result["history"]) == without_seconds(fresh["history"])
    assert_same_weights(result["state_dict"], fresh["state_dict"])


def test_warm_restart_starts_from_the_checkpoint(tiny_data, tmp_path):
    X, y, X_val, y_val = tiny_data
    first = train_cnn(*tiny_data, config=tiny_config(seed=1), device="cpu")
    path = save_checkpoint(first, tmp_path / "first.pt")
    params = lambda sd: {k: v for k, v in sd.items() if "running" not in k and "num_batches" not in k}  # noqa: E731
    # with a zero learning rate the parameters stay where the run started: the checkpoint's ...
    frozen = tiny_config(seed=2, lr=0.0, init_checkpoint=str(path))
    restarted = train_cnn(X[:48] + 40, y[:48], X_val, y_val, config=frozen, device="cpu")  # other data
    assert_same_weights(params(restarted["state_dict"]), params(first["state_dict"]))
    assert (restarted["mean"], restarted["std"]) == (first["mean"], first["std"])  # its normalisation kept
    assert restarted["init"]["path"] == str(path) and restarted["init"]["epochs"] == len(first["history"])
    # ... and not a random initialisation's
    cold = train_cnn(X[:48] + 40, y[:48], X_val, y_val, config=tiny_config(seed=2, lr=0.0), device="cpu")
    assert any(not torch.equal(v, first["state_dict"][k]) for k, v in params(cold["state_dict"]).items())
    assert "init" not in cold


def test_warm_restart_refuses_another_network(tiny_data, tmp_path):
    path = save_checkpoint(train_cnn(*tiny_data, config=tiny_config(epochs=1), device="cpu"), tmp_path / "a.pt")
    other = tiny_config(epochs=1, init_checkpoint=str(path), net={**TINY, "embedding_dim": 8})
    with pytest.raises(ValueError, match="not this run's"):
        train_cnn(*tiny_data, config=other, device="cpu")
    with pytest.raises(FileNotFoundError, match="no such CNN checkpoint"):
        train_cnn(*tiny_data, config=tiny_config(epochs=1, init_checkpoint=str(tmp_path / "none.pt")), device="cpu")


def test_fine_tuning_on_other_classes_keeps_the_shared_classifier_rows(tiny_data, tmp_path):
    X, y, X_val, y_val = tiny_data
    seven = [f"c{i}" for i in range(7)]
    first = train_cnn(*tiny_data, config=tiny_config(seed=1), device="cpu")
    first["classes"] = seven
    path = save_checkpoint(first, tmp_path / "seven.pt")
    eight = ["c0", "c1", "c2", "extra", "c3", "c4", "c5", "c6"]  # a new class in the middle, as sorted names do
    y8, yv8 = np.where(y >= 3, y + 1, y), np.where(y_val >= 3, y_val + 1, y_val)
    y8[:4] = 3
    frozen = tiny_config(seed=2, lr=0.0, init_checkpoint=str(path))
    tuned = train_cnn(X, y8, X_val, yv8, config=frozen, device="cpu", classes=eight)
    w, b = tuned["state_dict"]["classifier.weight"], tuned["state_dict"]["classifier.bias"]
    w0, b0 = first["state_dict"]["classifier.weight"], first["state_dict"]["classifier.bias"]
    assert w.shape[0] == 8
    for row, name in enumerate(eight):
        if name != "extra":
            assert torch.equal(w[row], w0[seven.index(name)]) and torch.equal(b[row], b0[seven.index(name)])
    assert not torch.equal(w[3], w0[3])  # the new class starts at random
    body = [k for k in first["state_dict"] if not k.startswith("classifier") and "running" not in k and "num_batches" not in k]
    assert_same_weights({k: tuned["state_dict"][k] for k in body}, {k: first["state_dict"][k] for k in body})
    assert tuned["init"]["classes"] == seven
    # without names the rows cannot be matched
    with pytest.raises(ValueError, match="cannot be matched"):
        train_cnn(X, y8, X_val, yv8, config=frozen, device="cpu")


def test_distillation_targets_are_the_teachers_mirror_averaged_softmax(tiny_data, tmp_path):
    X, y, X_val, y_val = tiny_data
    teacher = train_cnn(*tiny_data, config=tiny_config(seed=3), device="cpu")
    path = save_checkpoint(teacher, tmp_path / "teacher.pt")
    cfg = tiny_config(teacher=str(path), distill_temperature=3.0)
    _, probs = train_mod._teacher_targets(cfg, X, 7, torch.device("cpu"), "fp32")
    net = train_mod.net_from_checkpoint(load_checkpoint(path), torch.device("cpu"))
    xt = train_mod.to_tensor(X, teacher["mean"], teacher["std"])
    with torch.no_grad():
        logits = (net(xt) + net(torch.flip(xt, dims=[3]))) / 2
    assert probs.shape == (len(X), 7)
    assert torch.allclose(probs, torch.softmax(logits / 3.0, dim=1), atol=1e-5)

    # distill=0 trains on the labels alone: the same run as without a teacher; distill=1 does not
    plain = train_cnn(*tiny_data, config=tiny_config(seed=4), device="cpu")
    none = train_cnn(*tiny_data, config=tiny_config(seed=4, teacher=str(path), distill=0.0), device="cpu")
    full = train_cnn(*tiny_data, config=tiny_config(seed=4, teacher=str(path), distill=1.0), device="cpu")
    assert_same_weights(none["state_dict"], plain["state_dict"])
    assert any(not torch.equal(v, plain["state_dict"][k]) for k, v in full["state_dict"].items())
    assert full["teacher"]["path"] == str(path) and "teacher" not in plain
    with pytest.raises(ValueError, match="distill"):
        tiny_config(distill=1.5)


def test_an_ensemble_teacher_is_the_mean_of_its_members_tempered_softmax(tiny_data, tmp_path):
    X = tiny_data[0]
    paths = [str(save_checkpoint(train_cnn(*tiny_data, config=tiny_config(seed=s), device="cpu"), tmp_path / f"t{s}.pt")) for s in (5, 6)]
    members = [train_mod._teacher_targets(tiny_config(teacher=p, distill_temperature=2.0), X, 7, torch.device("cpu"), "fp32")[1] for p in paths]
    assert not torch.allclose(members[0], members[1])  # two different teachers, or the test proves nothing
    cfg = tiny_config(teacher=" , ".join(paths), distill_temperature=2.0)  # spaces around the commas are ignored
    record, probs = train_mod._teacher_targets(cfg, X, 7, torch.device("cpu"), "fp32")
    assert torch.allclose(probs, (members[0] + members[1]) / 2, atol=1e-6)
    assert [m["path"] for m in record["members"]] == paths
    assert record["val_accuracy"] == pytest.approx(np.mean([load_checkpoint(p)["val_accuracy"] for p in paths]))
    student = train_cnn(*tiny_data, config=tiny_config(seed=7, teacher=",".join(paths), distill=0.5), device="cpu")
    assert [m["path"] for m in student["teacher"]["members"]] == paths
    with pytest.raises(FileNotFoundError):
        train_mod._teacher_targets(tiny_config(teacher=paths[0] + "," + str(tmp_path / "missing.pt")), X, 7, torch.device("cpu"), "fp32")


# --------------------------------------------------------------------------- augmentation


def _generator(seed=0):
    return torch.Generator().manual_seed(seed)


def test_augment_keeps_shape_and_is_seeded():
    x = torch.randn(8, 1, 48, 48)
    cfg = TrainConfig()
    out = augment(x, cfg, _generator())
    assert out.shape == x.shape and out.dtype == x.dtype
    assert not torch.allclose(out, x)
    assert torch.equal(out, augment(x, cfg, _generator()))
    assert not torch.equal(out, augment(x, cfg, _generator(1)))


def test_augment_without_warp_or_erasing_only_mirrors():
    x = torch.randn(64, 1, 48, 48)
    cfg = TrainConfig(max_rotation=0, max_shift=0, max_scale=0, erasing=0)
    out = augment(x, cfg, _generator())
    kinds = []
    for i in range(len(x)):
        if torch.allclose(out[i], x[i], atol=1e-5):
            kinds.append("same")
        elif torch.allclose(out[i], torch.flip(x[i], dims=[-1]), atol=1e-5):
            kinds.append("mirror")
        else:
            pytest.fail(f"sample {i} is neither the image nor its mirror image")
    assert set(kinds) == {"same", "mirror"}  # about half each (2**-63 chance of failing)


def test_augment_erasing_blanks_one_rectangle_per_image():
    h = w = 48
    x = torch.ones(16, 1, h, w)  # standardised images never 0 here, so erased pixels are exactly 0
    cfg = TrainConfig(max_rotation=0, max_shift=0, max_scale=0, erasing=1.0)
    out = augment(x, cfg, _generator())
    for i in range(len(x)):
        img = out[i, 0]
        zero = img == 0
        assert zero.any(), f"nothing erased in image {i}"
        assert torch.all((img == 0) | torch.isclose(img, torch.ones(())))
        rows, cols = torch.nonzero(zero, as_tuple=True)
        box = img[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
        assert torch.all(box == 0), "the erased pixels are not one rectangle"
        assert zero.sum() <= 0.2 * h * w + 1

    untouched = augment(x, TrainConfig(max_rotation=0, max_shift=0, max_scale=0, erasing=0.0), _generator())
    assert not (untouched == 0).any()


# --------------------------------------------------------------------------- fer train / fer predict with the CNN







def cli_train(real_zip, out, *extra, device="cpu"):
    return fer("train", "--data", real_zip, "--limit", 120, "--epochs", 1, "--n-jobs", 1, "--device", device,
               "--out", out, *extra)


@pytest.fixture(scope="module")
def cnn_model(real_zip, tmp_path_factory, _one_torch_thread):
    """`fer train --clf cnn` once, small preset: the model path."""
    out = tmp_path_factory.mktemp("cnn-model") / "cnn.skops"
    result = cli_train(real_zip, out, "--clf", "cnn", "--preset", "small")
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    return out


def test_cli_train_cnn_writes_model_checkpoint_and_card(cnn_model):
    assert cnn_model.is_file()
    pt = cnn_model.with_suffix(".pt")
    ckpt = load_checkpoint(pt)
    assert ckpt["config"]["preset"] == "small" and ckpt["config"]["epochs"] == 1
    assert not cnn_model.with_suffix(".resume.pt").exists()

    card = json.loads(cnn_model.with_suffix(".json").read_text())
    assert card["classifier"] == "cnn" and card["features"] == "pixels" and card["feature_dims"] is None
    assert card["classes"] == sorted(EMOTIONS)
    assert card["cnn"]["checkpoint"] == str(pt)
    assert [rec["epoch"] for rec in card["cnn"]["history"]] == [1]
    assert card["cnn"]["history"] == ckpt["history"]
    assert card["cnn"]["val_accuracy"] == pytest.approx(ckpt["val_accuracy"])
    for split in ("PublicTest", "PrivateTest", "PrivateTest+TTA"):
        assert 0.0 <= card["metrics"][split]["accuracy"] <= 1.0
    assert card["metrics"]["PrivateTest+TTA"]["n"] == card["metrics"]["PrivateTest"]["n"]
    assert card["params"]["clf__tta"] is False and card["params"]["clf__preset"] == "small"
    assert cnn_model.with_suffix(".confusion.png").is_file()


def test_cli_cnn_model_loads_and_predicts(cnn_model, real_faces):
    from fer_features.persist.files import load_model

    pipe = load_model(cnn_model)
    clf = pipe.named_steps["clf"]
    assert isinstance(clf, CNNClassifier) and clf.tta is False  # TTA was only switched on for scoring
    proba = pipe.predict_proba(real_faces)
    assert proba.shape == (len(real_faces), 7)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
    # the saved model is the network of the saved checkpoint
    emb = CNNEmbedding(checkpoint=str(cnn_model.with_suffix(".pt")), device="cpu").fit(real_faces)
    for k, v in clf.module_.state_dict().items():
        assert torch.equal(v, emb.module_.state_dict()[k]), k


def test_cli_train_hog_plus_cnn_with_checkpoint(cnn_model, real_zip, tmp_path):
    out = tmp_path / "hc.skops"
    pt = cnn_model.with_suffix(".pt")
    result = cli_train(real_zip, out, "--features", "hog+cnn", "--clf", "logreg", "--cnn-checkpoint", pt, "--pca", 32)
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["features"] == "hog+cnn"
    assert card["feature_dims"] == HOG_DIM + PRESETS["small"]["embedding_dim"]
    assert card["params"]["features__cnn__checkpoint"] == str(pt)
    assert "cnn" not in card  # no CNN was trained
    assert 0.0 <= card["metrics"]["PrivateTest"]["accuracy"] <= 1.0
    assert not out.with_suffix(".cnn.pt").exists()


def test_cli_train_hog_plus_cnn_trains_the_cnn_first(real_zip, tmp_path):
    out = tmp_path / "hc.skops"
    result = cli_train(real_zip, out, "--features", "hog+cnn", "--clf", "logreg", "--pca", 16)
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    pt = out.with_suffix(".cnn.pt")
    assert load_checkpoint(pt)["config"]["preset"] == "small"
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["cnn"]["checkpoint"] == str(pt) and len(card["cnn"]["history"]) == 1
    assert card["params"]["features__cnn__checkpoint"] == str(pt)
    assert not out.with_suffix(".cnn.resume.pt").exists()


def test_cli_cnn_head_with_features_is_a_user_error(tmp_path):
    result = fer("train", "--data", tmp_path / "x.zip", "--features", "hog", "--clf", "cnn", "--out", tmp_path / "m.skops")
    assert_user_error(result, "pixels")
    assert not (tmp_path / "m.skops").exists()


def test_cli_missing_cnn_checkpoint_is_a_user_error(tmp_path):
    result = fer("train", "--data", tmp_path / "x.zip", "--features", "hog+cnn", "--clf", "logreg",
                 "--cnn-checkpoint", tmp_path / "missing.pt", "--out", tmp_path / "m.skops")
    assert_user_error(result, "missing.pt")


def test_cli_bad_cnn_checkpoint_is_a_user_error(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_text("not a checkpoint")
    result = fer("train", "--data", tmp_path / "x.zip", "--features", "hog+cnn", "--clf", "logreg",
                 "--cnn-checkpoint", bad, "--out", tmp_path / "m.skops")
    assert_user_error(result, "bad.pt")


@no_gpu
def test_cli_cnn_on_missing_cuda_is_a_user_error(real_zip, tmp_path):
    result = cli_train(real_zip, tmp_path / "m.skops", "--clf", "cnn", device="cuda")
    assert_user_error(result, "CUDA")


def test_cli_predict_crop_with_cnn_model(cnn_model, real_faces, tmp_path):
    crop = tmp_path / "face.png"
    Image.fromarray(real_faces[0]).save(crop)
    result = fer("predict", crop, "--model", cnn_model, "--json")
    assert result.exit_code == 0, result.output
    (photo,) = json.loads(result.stdout)
    assert photo["error"] is None
    (face,) = photo["faces"]
    assert set(face["probabilities"]) == set(EMOTIONS) and len(face["probabilities"]) == 7
    assert sum(face["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
    assert face["label"] == max(face["probabilities"], key=face["probabilities"].get)
    assert face["box"] == [0, 0, 48, 48]


def test_cli_evaluate_scores_a_checkpoint_directly(cnn_model, real_zip, tmp_path):
    pt = cnn_model.with_suffix(".pt")
    args = ("--data", str(real_zip), "--split", "PublicTest", "--json", "--precision", "fp32")
    via_pipeline = json.loads(fer("evaluate", str(cnn_model), *args[:-2], "--plot", str(tmp_path / "a.png")).stdout)  # the format note is on stderr
    result = fer("evaluate", str(pt), *args, "--plot", str(tmp_path / "b.png"))
    assert result.exit_code == 0, result.output
    direct = json.loads(result.stdout)
    assert direct["tta"] == "none" and direct["precision"] == "fp32"
    # the same network, so the same score as the saved pipeline (that one may run in bf16)
    assert direct["accuracy"] == pytest.approx(via_pipeline["accuracy"], abs=0.01)
    ten = json.loads(fer("evaluate", str(pt), *args, "--tta", "ten-crop", "--plot", str(tmp_path / "c.png")).stdout)
    assert ten["tta"] == "ten-crop" and 0 <= ten["accuracy"] <= 1


def test_cli_evaluate_refuses_a_checkpoint_without_class_names(tmp_path, real_zip):
    pt = save_checkpoint(make_checkpoint(), tmp_path / "bare.pt")
    result = fer("evaluate", str(pt), "--data", str(real_zip))
    assert_user_error(result, "bare.pt", "no class names")
