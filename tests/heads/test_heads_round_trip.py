"""Every registered classifier head trains on a few hundred faces, saves as .skops, loads back
through the public loader and predicts the same: ``fer train`` never writes a file that
``fer predict`` refuses (the trust list is derived from the registries)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import pattern_images

from fer_features.config import EMOTIONS
from fer_features.heads.registry import END_TO_END, HEADS, PRETRAINED
from fer_features.persist.files import load_model, save_model
from fer_features.persist.trust import trusted_types
from fer_features.training.pipelines import build_pipeline

#: Small settings per head, so that each trains in seconds.
FAST = {
    "gbm": {"max_iter": 5},
    "nystroem": {"n_components": 50},
    "mlp": {"hidden_layer_sizes": (16,), "max_iter": 30},
    "local-svm": {"n_neighbors": 30, "calibration_samples": 50},
    "cnn": {"preset": "tiny", "epochs": 1, "batch_size": 32, "device": "cpu"},
    "cnn-ensemble": {"device": "cpu", "precision": "fp32"},
}


@pytest.fixture(scope="module")
def faces():
    """280 learnable synthetic crops (40 per emotion), and 70 more to select on."""
    return pattern_images(per_class=40), pattern_images(per_class=10, seed=1)


@pytest.fixture(scope="module")
def tiny_cnn(tmp_path_factory):
    """A ``tiny`` CNN preset while this module runs, and two tiny checkpoints for ``cnn-ensemble``."""
    pytest.importorskip("torch")
    from conftest import TINY, make_checkpoint

    from fer_features.cnn.checkpoints import save_checkpoint
    from fer_features.cnn.presets import PRESETS

    folder = tmp_path_factory.mktemp("ensemble")
    paths = []
    for seed in (0, 1):
        ckpt = make_checkpoint(seed)
        ckpt["classes"] = sorted(EMOTIONS)
        paths.append(save_checkpoint(ckpt, folder / f"m{seed}.pt"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(PRESETS, "tiny", dict(TINY))
        yield "+".join(map(str, paths))


@pytest.mark.parametrize("clf", list(HEADS))
def test_every_registered_head_round_trips_through_skops(clf, faces, tmp_path, request):
    (X, y), (X_val, y_val) = faces
    params = dict(FAST.get(clf, {}))
    fit_params = {}
    if clf in END_TO_END:
        checkpoints = request.getfixturevalue("tiny_cnn")
        if clf in PRETRAINED:
            params["checkpoints"] = checkpoints
        fit_params = {"clf__X_val": X_val, "clf__y_val": y_val}
        pipe = build_pipeline(None, clf, clf_params=params)
    else:
        pipe = build_pipeline("hog+lbp", clf, pca=10, n_jobs=1, clf_params=params)
    pipe.fit(X, y, **fit_params)

    path = save_model(pipe, tmp_path / f"{clf}.skops")
    import skops.io as sio

    untrusted = set(sio.get_untrusted_types(file=path))
    assert untrusted <= trusted_types(), f"{clf}: not in its registry entry's types: {untrusted - trusted_types()}"
    loaded = load_model(path)
    np.testing.assert_allclose(loaded.predict_proba(X_val), pipe.predict_proba(X_val), rtol=1e-6, atol=1e-7)
    assert list(loaded.predict(X_val)) == list(pipe.predict(X_val))
