"""Trained CNNs as one classifier (``CNNEnsembleClassifier``, ``--clf cnn-ensemble``).

Tiny random networks on one torch thread, as in ``test_cnn.py`` and ``test_int8.py``.
"""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from conftest import assert_user_error, fer, pixel_string, write_csv  # noqa: E402
from test_cnn import TINY, _one_torch_thread, make_checkpoint, random_faces, skops_round_trip  # noqa: E402, F401  (one torch thread: test_cnn's autouse fixture)

from fer_features.cnn.checkpoints import save_checkpoint  # noqa: E402
from fer_features.cnn.classifier import CNNClassifier  # noqa: E402
from fer_features.cnn.ensemble import CNNEnsembleClassifier
from fer_features.cnn.int8 import calibrate_checkpoint  # noqa: E402
from fer_features.config import EMOTIONS  # noqa: E402

CLASSES = sorted(EMOTIONS)


@pytest.fixture(scope="module")
def faces():
    return random_faces(120, seed=5)


@pytest.fixture(scope="module")
def members(tmp_path_factory, faces):
    """Two different random networks with class names and int8 calibrations (one with a batch size), on disk."""
    folder = tmp_path_factory.mktemp("ensemble")
    paths = []
    for seed, batch_size in ((1, None), (2, 48)):
        ckpt = make_checkpoint(seed=seed, net=TINY)
        ckpt["classes"] = CLASSES
        ckpt["int8"] = calibrate_checkpoint(ckpt, faces[:60], n=60)
        if batch_size is not None:
            ckpt["int8"]["batch_size"] = batch_size
        save_checkpoint(ckpt, folder / f"net{seed}.pt")
        paths.append(str(folder / f"net{seed}.pt"))
    return paths


def labels(n: int) -> np.ndarray:
    return np.asarray(CLASSES)[np.arange(n) % 7]


def test_probabilities_are_the_mean_of_the_members(members, faces):
    ens = CNNEnsembleClassifier(checkpoints="+".join(members), device="cpu").fit(faces[:14], labels(14))
    assert ens.checkpoints_ == members and len(ens.estimators_) == 2
    alone = [CNNClassifier.from_checkpoint(p, device="cpu").predict_proba(faces[60:]) for p in members]
    assert not np.allclose(alone[0], alone[1])  # two different networks, or the test proves nothing
    proba = ens.predict_proba(faces[60:])
    assert proba.shape == (60, 7) and proba.dtype == np.float64
    np.testing.assert_allclose(proba, (alone[0] + alone[1]) / 2, atol=1e-6)
    np.testing.assert_array_equal(ens.predict(faces[60:]), np.asarray(CLASSES)[proba.argmax(1)])
    assert list(ens.classes_) == CLASSES
    # a sequence of paths is the same as the '+'-joined string
    listed = CNNEnsembleClassifier(checkpoints=members, device="cpu").fit(faces[:14], labels(14))
    np.testing.assert_allclose(listed.predict_proba(faces[60:]), proba, atol=1e-12)


def test_members_may_list_their_classes_in_another_order(members, faces, tmp_path):
    """A network trained with the data's class order (FER2013's) averages with alphabetical ones, column by column."""
    import torch

    ckpt = torch.load(members[1], map_location="cpu", weights_only=False)
    order = [5, 0, 6, 1, 4, 2, 3]  # a permutation of the rows: the same network, its outputs listed in another order
    ckpt["classes"] = [CLASSES[i] for i in order]
    for key in ("classifier.weight", "classifier.bias"):
        ckpt["state_dict"][key] = ckpt["state_dict"][key][order]
    save_checkpoint(ckpt, tmp_path / "shuffled.pt")
    alone = CNNClassifier.from_checkpoint(tmp_path / "shuffled.pt", device="cpu").predict_proba(faces[60:])
    assert not np.allclose(alone, CNNClassifier.from_checkpoint(members[1], device="cpu").predict_proba(faces[60:]))
    same = CNNEnsembleClassifier(checkpoints=f"{members[0]}+{members[1]}", device="cpu").fit(faces[:14], labels(14))
    mixed = CNNEnsembleClassifier(checkpoints=f"{members[0]}+{tmp_path / 'shuffled.pt'}", device="cpu").fit(faces[:14], labels(14))
    assert list(mixed.classes_) == CLASSES
    np.testing.assert_allclose(mixed.predict_proba(faces[60:]), same.predict_proba(faces[60:]), atol=1e-5)


def test_temperature_is_fitted_on_the_validation_split(members, faces):
    from sklearn.metrics import log_loss

    plain = CNNEnsembleClassifier(checkpoints=members, device="cpu").fit(faces[:14], labels(14))
    assert plain.temperature_ == 1.0  # no validation split: the plain mean
    # labels the random networks get two times in three: a finite best temperature
    y_val = plain.predict(faces[20:60])
    y_val[::3] = labels(40)[::3]
    fitted = CNNEnsembleClassifier(checkpoints=members, device="cpu").fit(faces[:14], labels(14), X_val=faces[20:60], y_val=y_val)
    t = fitted.temperature_
    assert 0.05 < t < 10.0 and t != 1.0  # inside the search bounds
    loss = lambda temperature: log_loss(  # noqa: E731
        y_val, CNNEnsembleClassifier(checkpoints=members, device="cpu", temperature=temperature).fit(faces[:14], labels(14)).predict_proba(faces[20:60]),
        labels=CLASSES)  # fmt: skip
    assert loss(t) <= min(loss(1.0), loss(t * 1.2), loss(t / 1.2)) + 1e-9  # a minimum of the validation log loss
    # the labels do not change, only how sure the model is
    np.testing.assert_array_equal(fitted.predict(faces[60:]), plain.predict(faces[60:]))
    assert not np.allclose(fitted.predict_proba(faces[60:]), plain.predict_proba(faces[60:]))
    np.testing.assert_allclose(fitted.predict_proba(faces[60:]).sum(axis=1), 1.0, atol=1e-9)
    given = CNNEnsembleClassifier(checkpoints=members, device="cpu", temperature=2.0)
    assert given.fit(faces[:14], labels(14), X_val=faces[20:60], y_val=y_val).temperature_ == 2.0
    for bad in (0, -1.0, "hot", None):
        with pytest.raises(ValueError, match="temperature"):
            CNNEnsembleClassifier(checkpoints=members, temperature=bad).fit(faces[:14], labels(14))
        with pytest.raises(ValueError, match="temperature"):
            fitted.set_params(temperature=bad)
    assert fitted.set_params(temperature=3.0).temperature_ == 3.0
    with pytest.raises(ValueError, match="both X_val and y_val"):
        CNNEnsembleClassifier(checkpoints=members).fit(faces[:14], labels(14), X_val=faces[20:60])
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        CNNEnsembleClassifier(checkpoints=members).fit(faces[:14], labels(14), X_val=faces[20:60], y_val=y_val[:-1])


def test_prior_correction_divides_out_the_training_class_frequencies(members, faces):
    from scipy.special import softmax

    y = np.asarray(CLASSES)[[0] * 40 + [3] * 15 + [5] * 5]  # three classes seen, at 40 : 15 : 5
    plain = CNNEnsembleClassifier(checkpoints=members, device="cpu").fit(faces[:60], y)
    counts = np.array([41, 1, 1, 16, 1, 6, 1], dtype=float)  # each count plus one, in CLASSES' order
    np.testing.assert_allclose(plain.class_prior_, counts / counts.sum())
    for tau in (0.5, 1.0):
        fixed = CNNEnsembleClassifier(checkpoints=members, device="cpu", prior_correction=tau).fit(faces[:60], y)
        expected = softmax(np.log(plain.predict_proba(faces[60:])) - tau * np.log(plain.class_prior_), axis=1)
        np.testing.assert_allclose(fixed.predict_proba(faces[60:]), expected, atol=1e-9)
    # the frequent class loses faces to the rare ones, never the other way round
    frequent = CLASSES.index(CLASSES[0])
    assert np.sum(fixed.predict(faces[60:]) == CLASSES[frequent]) <= np.sum(plain.predict(faces[60:]) == CLASSES[frequent])
    # the temperature is fitted on the corrected scores: the validation log loss at its minimum
    from sklearn.metrics import log_loss

    y_val = fixed.predict(faces[20:60])  # labels the corrected model gets two times in three: a finite best temperature
    y_val[::3] = labels(40)[::3]
    fitted = CNNEnsembleClassifier(checkpoints=members, device="cpu", prior_correction=0.5).fit(faces[:60], y, X_val=faces[20:60], y_val=y_val)
    loss = lambda t: log_loss(y_val, softmax(fitted._scores(faces[20:60]) / t, axis=1), labels=CLASSES)  # noqa: E731
    assert 0.05 < fitted.temperature_ < 10.0
    assert loss(fitted.temperature_) <= min(loss(1.0), loss(fitted.temperature_ * 1.2), loss(fitted.temperature_ / 1.2)) + 1e-9
    for bad in (-0.5, "strong", None):
        with pytest.raises(ValueError, match="prior_correction"):
            CNNEnsembleClassifier(checkpoints=members, prior_correction=bad).fit(faces[:14], labels(14))
        with pytest.raises(ValueError, match="prior_correction"):
            fitted.set_params(prior_correction=bad)
    # a fitted ensemble applies a new correction at once
    np.testing.assert_allclose(plain.set_params(prior_correction=1.0).predict_proba(faces[60:]), expected, atol=1e-9)


def test_int8_members_use_their_measured_batch_size(members, faces):
    ens = CNNEnsembleClassifier(checkpoints="+".join(members), precision="int8", device="cpu").fit(faces[:14], labels(14))
    assert [m.batch_size for m in ens.estimators_] == [256, 48]  # no measurement: 256; then the checkpoint's
    assert ens.inference_precision() == "int8"
    assert ens.predict_proba(faces[60:70]).shape == (10, 7)


def test_set_params_reaches_the_fitted_members(members, faces):
    ens = CNNEnsembleClassifier(checkpoints="+".join(members), device="cpu").fit(faces[:14], labels(14))
    plain = ens.predict_proba(faces[60:70])
    ens.set_params(tta="flip")
    assert all(m.tta == "flip" for m in ens.estimators_)
    assert not np.allclose(ens.predict_proba(faces[60:70]), plain)  # the mirror view is averaged in
    ens.set_params(tta=False)
    np.testing.assert_allclose(ens.predict_proba(faces[60:70]), plain, atol=1e-12)
    # a new precision loads the members again, with their int8 batch sizes
    ens.set_params(precision="int8")
    assert ens.inference_precision() == "int8" and [m.batch_size for m in ens.estimators_] == [256, 48]
    ens.set_params(checkpoints=members[1])
    assert ens.checkpoints_ == [members[1]] and len(ens.estimators_) == 1
    one = CNNClassifier.from_checkpoint(members[1], device="cpu", precision="int8").predict_proba(faces[60:70])
    np.testing.assert_allclose(ens.predict_proba(faces[60:70]), one, atol=1e-12)


def test_paths_may_be_path_objects_with_spaces_around_plus(members, faces):
    from pathlib import Path

    a = CNNEnsembleClassifier(checkpoints=Path(members[0])).fit(faces[:14], labels(14))
    assert a.checkpoints_ == [members[0]]
    b = CNNEnsembleClassifier(checkpoints=f"{members[0]} + {members[1]}").fit(faces[:14], labels(14))
    assert b.checkpoints_ == members


def test_contract_clone_pickle_skops(members, faces):
    from sklearn.base import clone
    from sklearn.exceptions import NotFittedError

    ens = CNNEnsembleClassifier(checkpoints="+".join(members), precision="int8", device="cpu")
    with pytest.raises(NotFittedError):
        ens.predict_proba(faces[:2])
    assert clone(ens).get_params() == ens.get_params()
    assert ens.fit(faces[:14], labels(14)) is ens
    before = ens.predict_proba(faces[60:80])
    for again in (pickle.loads(pickle.dumps(ens)), skops_round_trip(ens)):
        np.testing.assert_allclose(again.predict_proba(faces[60:80]), before, atol=1e-12)
        assert [m.batch_size for m in again.estimators_] == [256, 48]


def test_fit_refuses_bad_members(members, faces, tmp_path):
    with pytest.raises(ValueError, match="needs checkpoints"):
        CNNEnsembleClassifier(checkpoints="").fit(faces[:14], labels(14))
    with pytest.raises(FileNotFoundError):
        CNNEnsembleClassifier(checkpoints=f"{members[0]}+{tmp_path / 'missing.pt'}").fit(faces[:14], labels(14))
    other = make_checkpoint(seed=3, net=TINY)
    other["classes"] = [c.upper() for c in CLASSES]
    save_checkpoint(other, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="other.pt: its classes"):
        CNNEnsembleClassifier(checkpoints=f"{members[0]}+{tmp_path / 'other.pt'}").fit(faces[:14], labels(14))
    with pytest.raises(ValueError, match=r"labels \['contempt'\]"):
        CNNEnsembleClassifier(checkpoints=members[0]).fit(faces[:8], [*labels(7), "contempt"])
    uncalibrated = make_checkpoint(seed=4, net=TINY)
    uncalibrated["classes"] = CLASSES
    save_checkpoint(uncalibrated, tmp_path / "old.pt")
    with pytest.raises(ValueError, match=r"old\.pt: .*fer quantize"):
        CNNEnsembleClassifier(checkpoints=str(tmp_path / "old.pt"), precision="int8").fit(faces[:14], labels(14))
    with pytest.raises(ValueError, match="shape"):
        CNNEnsembleClassifier(checkpoints=members[0]).fit(faces[0], labels(1))
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        CNNEnsembleClassifier(checkpoints=members[0]).fit(faces[:14], labels(13))


def test_fer_train_cnn_ensemble_cli(members, faces, tmp_path):
    from fer_features.persist.files import load_model

    usage = ["Training"] * 60 + ["PublicTest"] * 30 + ["PrivateTest"] * 30
    rows = [(i % 7, pixel_string(face), u) for i, (face, u) in enumerate(zip(faces, usage))]
    data = write_csv(tmp_path / "fer2013.csv", rows)
    out = tmp_path / "ens.skops"
    result = fer("train", "--data", str(data), "--clf", "cnn-ensemble", "--cnn-checkpoint", "+".join(members),
                 "--precision", "int8", "--out", str(out))  # fmt: skip
    assert result.exit_code == 0, result.output
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["classifier"] == "cnn-ensemble" and card["cnn"]["precision"] == "int8"
    assert [m["checkpoint"] for m in card["cnn"]["ensemble"]] == members
    assert [m["batch_size"] for m in card["cnn"]["ensemble"]] == [256, 48]
    model = load_model(out)  # skops, with the project's trusted types only
    X_private = faces[90:]
    # the temperature is fitted on the PublicTest rows, the model's probabilities are the tempered mean
    public_labels = np.asarray(EMOTIONS)[np.arange(60, 90) % 7]
    expected = CNNEnsembleClassifier(checkpoints=members, precision="int8", device="cpu")
    expected.fit(faces[:14], labels(14), X_val=faces[60:90], y_val=public_labels)
    assert card["cnn"]["temperature"] == expected.temperature_ != 1.0
    np.testing.assert_allclose(model.predict_proba(X_private), expected.predict_proba(X_private), atol=1e-9)
    corrected = tmp_path / "ens-prior.skops"
    result = fer("train", "--data", str(data), "--clf", "cnn-ensemble", "--cnn-checkpoint", "+".join(members),
                 "--precision", "int8", "--prior-correction", "0.5", "--out", str(corrected))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert load_model(corrected).named_steps["clf"].prior_correction == 0.5
    assert_user_error(fer("train", "--data", str(data), "--features", "hog", "--clf", "logreg", "--prior-correction", "0.5",
                          "--out", str(tmp_path / "x.skops")), "--prior-correction")  # fmt: skip
    accuracy = float(np.mean(model.predict(X_private) == np.asarray(EMOTIONS)[np.arange(90, 120) % 7]))
    assert card["metrics"]["PrivateTest"]["accuracy"] == pytest.approx(accuracy)
    assert_user_error(fer("train", "--data", str(data), "--clf", "cnn-ensemble", "--out", str(tmp_path / "x.skops")),
                      "--cnn-checkpoint")  # fmt: skip
    assert_user_error(fer("train", "--data", str(data), "--clf", "cnn-ensemble", "--cnn-checkpoint",
                          f"{members[0]}+{tmp_path / 'gone.pt'}", "--out", str(tmp_path / "x.skops")), "gone.pt")  # fmt: skip
    uncalibrated = make_checkpoint(seed=4, net=TINY)
    uncalibrated["classes"] = CLASSES
    save_checkpoint(uncalibrated, tmp_path / "old.pt")
    # checked before any data is read: the message names the file and says how to calibrate it
    assert_user_error(fer("train", "--data", str(tmp_path / "no-data.csv"), "--clf", "cnn-ensemble", "--cnn-checkpoint",
                          f"{members[0]}+{tmp_path / 'old.pt'}", "--precision", "int8", "--out", str(tmp_path / "x.skops")),
                      "old.pt", "fer quantize")  # fmt: skip
    assert not (tmp_path / "x.skops").exists()


def test_cli_refusals(members, faces, tmp_path):
    from fer_features.benchmark import Grid

    rows = [(i % 7, pixel_string(face), u) for i, (face, u) in enumerate(zip(faces, ["Training"] * 60 + ["PublicTest"] * 60))]
    data = write_csv(tmp_path / "fer2013.csv", rows)
    # int8 is not silently ignored where it does nothing
    assert_user_error(fer("train", "--data", str(data), "--features", "hog", "--clf", "logreg", "--precision", "int8",
                          "--out", str(tmp_path / "x.skops")), "cnn.precision=int8")  # fmt: skip
    # networks whose classes lack a label of the data: a data error naming the file, nothing written
    other = make_checkpoint(seed=5, net=TINY)
    other["classes"] = sorted(["contempt" if c == "disgust" else c for c in CLASSES])
    save_checkpoint(other, tmp_path / "contempt.pt")
    assert_user_error(fer("train", "--data", str(data), "--clf", "cnn-ensemble", "--cnn-checkpoint", str(tmp_path / "contempt.pt"),
                          "--out", str(tmp_path / "x.skops")), "fer2013.csv", "disgust")  # fmt: skip
    assert not (tmp_path / "x.skops").exists()
    with pytest.raises(ValueError, match="fer train --clf cnn-ensemble"):
        Grid(features=["hog"], classifiers=["cnn-ensemble"]).validate()
