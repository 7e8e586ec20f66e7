"""Training on the photo pipeline's framing (fer_features.data.photos.pipeline_views and
TrainConfig.pipeline_views). Real PublicTest crops (a few) for the views; tiny networks, one torch thread."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import test_cnn  # noqa: E402
from test_cnn import _one_torch_thread, interrupted_run, tiny_config  # noqa: E402, F401 - _one_torch_thread: autouse here too

from fer_features.cnn.loop import train_cnn  # noqa: E402
from fer_features.cnn.recipe import TrainConfig  # noqa: E402
from fer_features.data.photos import crop_as_photo, pipeline_views  # noqa: E402
from fer_features.faces.alignment import find_faces  # noqa: E402

tiny_data, val_counter = test_cnn.tiny_data, test_cnn.val_counter  # test_cnn's fixtures, here too
real_small, tiny_preset = test_cnn.real_small, test_cnn.tiny_preset


def test_pipeline_views_are_the_photo_paths_crops(real_faces):
    pytest.importorskip("yuface")
    blank = np.full((1, 48, 48), 128, np.uint8)  # no face in it: kept as it is
    X = np.concatenate([real_faces[:3], blank])
    views, found = pipeline_views(X, n_jobs=1, size=384)
    assert views.shape == X.shape and views.dtype == np.uint8
    assert found[:3].all() and not found[3]
    np.testing.assert_array_equal(views[3], blank[0])
    for crop, view in zip(X[:3], views[:3]):
        expected = find_faces(crop_as_photo(crop, 4, 384))[0].crop
        np.testing.assert_array_equal(view, expected)
        assert not np.array_equal(view, crop)  # re-framed, not the FER2013 crop
    # the same in worker processes, in any chunking
    np.testing.assert_array_equal(pipeline_views(X, n_jobs=2, size=384)[0], views)


def test_pipeline_views_wants_48_pixel_crops():
    with pytest.raises(ValueError, match=r"\(n, 48, 48\)"):
        pipeline_views(np.zeros((2, 40, 40), np.uint8))


def test_training_on_views_uses_them_and_is_deterministic(tiny_data):
    X, y, X_val, y_val = tiny_data
    views = np.ascontiguousarray(X[:, :, ::-1])  # stand-in views: the mirror image (any other image would do)
    cfg = tiny_config(epochs=1, pipeline_views=0.5)
    a = train_cnn(X, y, X_val, y_val, config=cfg, device="cpu", views_train=views)
    b = train_cnn(X, y, X_val, y_val, config=cfg, device="cpu", views_train=views)
    assert a["config"]["pipeline_views"] == 0.5
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    other = train_cnn(X, y, X_val, y_val, config=cfg, device="cpu", views_train=np.zeros_like(X))
    assert a["history"][0]["loss"] != other["history"][0]["loss"]  # the views are what it trained on
    # off: the views are ignored and the run is the plain recipe's
    off = train_cnn(X, y, X_val, y_val, config=tiny_config(epochs=1), device="cpu", views_train=views)
    plain = train_cnn(X, y, X_val, y_val, config=tiny_config(epochs=1), device="cpu")
    assert off["history"][0]["loss"] == plain["history"][0]["loss"]


def test_views_are_required_and_checked(tiny_data):
    X, y, X_val, y_val = tiny_data
    with pytest.raises(ValueError, match="needs views_train"):
        train_cnn(X, y, X_val, y_val, config=tiny_config(epochs=1, pipeline_views=0.5), device="cpu")
    with pytest.raises(ValueError, match="shape of X_train"):
        train_cnn(X, y, X_val, y_val, config=tiny_config(epochs=1, pipeline_views=0.5), device="cpu", views_train=X[:-1])
    with pytest.raises(ValueError, match="probability in"):
        TrainConfig(pipeline_views=-0.1)


def test_a_resume_file_is_not_used_with_other_views(tiny_data, tmp_path, val_counter):
    X, y, X_val, y_val = tiny_data
    cfg = tiny_config(epochs=3, pipeline_views=0.5)
    resume = tmp_path / "run.resume.pt"
    views = np.ascontiguousarray(X[:, :, ::-1])
    val_counter()
    interrupted_run((X, y, X_val, y_val), cfg, resume, views_train=views)
    val_counter()
    trained = []
    train_cnn(X, y, X_val, y_val, config=cfg, device="cpu", resume_path=resume, on_epoch=trained.append, views_train=np.zeros_like(X))
    assert [rec["epoch"] for rec in trained] == [1, 2, 3]


def test_classifier_makes_views_of_its_training_faces_only(real_small, tiny_preset, monkeypatch):
    import fer_features.data.photos as photos
    from fer_features.cnn.classifier import CNNClassifier

    X, y, _, _ = real_small
    seen = []

    def fake_views(faces):  # records what it was asked for; the mirror image as the view
        seen.append(faces)
        return np.ascontiguousarray(faces[:, :, ::-1]), np.ones(len(faces), bool)

    monkeypatch.setattr(photos, "pipeline_views", fake_views)
    clf = CNNClassifier(preset=tiny_preset, epochs=1, batch_size=32, device="cpu", validation_fraction=0.2, pipeline_views=0.5)
    clf.fit(X[:150], y[:150])
    assert len(seen) == 1 and len(seen[0]) == 120  # the 30 held out for validation get no views
    assert clf.checkpoint_["config"]["pipeline_views"] == 0.5
    CNNClassifier(preset=tiny_preset, epochs=1, batch_size=32, device="cpu", validation_fraction=0.2).fit(X[:150], y[:150])
    assert len(seen) == 1  # off: no views are made
