"""The feature registry (make_features / parse_spec), classifier heads and build_pipeline."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import StandardScaler

from fer_features.config import EMOTIONS
from fer_features.features import HOGFeatures, LBPFeatures, list_features, make_features, parse_spec
from fer_features.heads.registry import BLOCK_HEADS, END_TO_END, HISTOGRAM_HEADS, list_classifiers, make_classifier
from fer_features.training.pipelines import build_pipeline, feature_dims


def crops(n=4, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 48, 48), dtype=np.uint8)


# --------------------------------------------------------------------------- registry


def test_make_features_hog_lbp_is_a_feature_union():
    union = make_features("hog+lbp")
    assert isinstance(union, FeatureUnion)
    assert [name for name, _ in union.transformer_list] == ["hog", "lbp"]
    assert isinstance(union.named_transformers["hog"], HOGFeatures)
    assert isinstance(union.named_transformers["lbp"], LBPFeatures)

    X = crops()
    out = union.fit_transform(X)
    names = list(union.get_feature_names_out())
    n_hog = HOGFeatures().fit(X).transform(X).shape[1]
    assert out.shape == (len(X), len(names))
    assert names[0] == "hog__hog0" and names[n_hog - 1] == f"hog__hog{n_hog - 1}"
    assert names[n_hog] == "lbp__lbp0" and names[-1] == f"lbp__lbp{len(names) - n_hog - 1}"
    # the union is the concatenation of its parts
    np.testing.assert_array_equal(out[:, :n_hog], HOGFeatures().fit(X).transform(X))
    np.testing.assert_array_equal(out[:, n_hog:], LBPFeatures().fit(X).transform(X))


def test_single_feature_is_still_wrapped():
    union = make_features("lbp").fit(crops())
    assert [name for name, _ in union.transformer_list] == ["lbp"]
    assert union.get_feature_names_out()[0] == "lbp__lbp0"


def test_spec_is_case_and_space_tolerant():
    assert parse_spec(" HOG + Lbp ") == ["hog", "lbp"]


def test_make_features_passes_n_jobs_and_params():
    union = make_features("hog+lbp", n_jobs=2, params={"hog": {"orientations": 12}})
    hog = union.named_transformers["hog"]
    assert hog.orientations == 12 and hog.n_jobs == 2
    assert union.named_transformers["lbp"].n_jobs == 2


def test_unknown_feature_lists_valid_names():
    with pytest.raises(ValueError) as info:
        make_features("hog+sift")
    message = str(info.value)
    assert "'sift'" in message
    for name in list_features():
        assert name in message
    assert set(list_features()) >= {"hog", "lbp", "landmarks"}


@pytest.mark.parametrize("spec", ["", "hog+", "+lbp", "hog++lbp"])
def test_empty_spec_or_name(spec):
    with pytest.raises(ValueError, match="empty feature name"):
        make_features(spec)


@pytest.mark.parametrize("spec", ["hog+hog", "hog+lbp+HOG"])
def test_duplicate_names(spec):
    with pytest.raises(ValueError, match="twice"):
        make_features(spec)


def test_params_for_feature_not_in_spec():
    with pytest.raises(ValueError, match="lbp"):
        make_features("hog", params={"lbp": {"radius": 2}})


def test_set_output_pandas_gives_named_columns():
    X = crops()
    union = make_features("hog+lbp").set_output(transform="pandas")
    df = union.fit_transform(X)
    assert isinstance(df, pd.DataFrame)
    assert list(df.columns) == list(union.get_feature_names_out())
    assert df.columns[0] == "hog__hog0" and "lbp__lbp0" in df.columns
    np.testing.assert_array_equal(df.to_numpy(), make_features("hog+lbp").fit_transform(X))


def test_feature_dims_matches_fitted_output():
    X = crops(2)
    assert feature_dims("hog+lbp") == make_features("hog+lbp").fit_transform(X).shape[1]
    assert feature_dims("landmarks") == 136 + 20


# --------------------------------------------------------------------------- classifiers and pipelines


# Heads that sit on extracted features; the end-to-end cnn head is tested in test_cnn.py.
FEATURE_HEADS = sorted(set(list_classifiers()) - END_TO_END)


@pytest.mark.parametrize("clf", FEATURE_HEADS)
def test_every_classifier_learns_synthetic_patterns(clf, patterns):
    X, labels = patterns
    pipe = build_pipeline("hog", clf, pca=20, n_jobs=1)
    assert [name for name, _ in pipe.steps] == ["features", "scale", "pca", "clf"]
    if clf in HISTOGRAM_HEADS | BLOCK_HEADS:  # they normalise, scale or reduce each block themselves
        assert pipe.named_steps["scale"] == pipe.named_steps["pca"] == "passthrough"
    else:
        assert isinstance(pipe.named_steps["scale"], StandardScaler)
    assert pipe.fit(X, labels) is pipe
    assert list(pipe.classes_) == sorted(EMOTIONS)

    proba = pipe.predict_proba(X)
    assert proba.shape == (len(X), len(EMOTIONS))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    predicted = pipe.predict(X)
    assert set(predicted) <= set(EMOTIONS)
    # predict agrees with the most probable class, and beats always-the-majority-class
    np.testing.assert_array_equal(predicted, pipe.classes_[proba.argmax(axis=1)])
    majority = max(np.mean(labels == e) for e in EMOTIONS)
    assert np.mean(predicted == labels) > majority


def test_pca_kept_when_features_exceed_it():
    pipe = build_pipeline("hog", "logreg", pca=32)
    reducer = pipe.named_steps["pca"]
    assert isinstance(reducer, PCA) and reducer.n_components == 32


@pytest.mark.parametrize("spec, pca", [("landmarks", 256), ("hog", 10_000), ("lbp", None)])
def test_pca_dropped_when_not_smaller_than_features(spec, pca):
    pipe = build_pipeline(spec, "logreg", pca=pca)
    assert pipe.named_steps["pca"] == "passthrough"


def test_pca_equal_to_feature_dims_is_dropped():
    pipe = build_pipeline("landmarks", "logreg", pca=feature_dims("landmarks"))
    assert pipe.named_steps["pca"] == "passthrough"


def test_pca_larger_than_training_set_is_a_clear_error(patterns):
    """build_pipeline keeps the user's n_components; PCA then says why it cannot fit 140 images.

    (`fer train --limit` lowers the components itself; see test_cli.)
    """
    X, labels = patterns  # 140 images, HOG gives 1,764 features > 256
    pipe = build_pipeline("hog", "logreg", n_jobs=1)
    with pytest.raises(ValueError, match="n_components=256"):
        pipe.fit(X, labels)


def test_bad_pca():
    with pytest.raises(ValueError, match="pca"):
        build_pipeline("hog", "logreg", pca=0)


def test_end_to_end_head_takes_no_features():
    with pytest.raises(ValueError, match="learns from the pixels"):
        build_pipeline("hog", "cnn")
    with pytest.raises(ValueError, match="class_weight"):
        build_pipeline(None, "cnn", class_weight="balanced")
    assert [name for name, _ in build_pipeline(None, "cnn").steps] == ["clf"]


def test_unknown_classifier_lists_valid_names():
    with pytest.raises(ValueError) as info:
        build_pipeline("hog", "random-forest")
    for name in list_classifiers():
        assert name in str(info.value)


@pytest.mark.parametrize("weight", ["Balanced", "auto", {0: 1.0}])
def test_bad_class_weight(weight):
    with pytest.raises(ValueError, match="class_weight"):
        build_pipeline("hog", "svm", class_weight=weight)


def test_bad_classifier_parameter():
    with pytest.raises(ValueError, match="logreg"):
        make_classifier("logreg", gamma=3)


@pytest.mark.parametrize("clf", FEATURE_HEADS)
def test_class_weight_and_seed_reach_the_head(clf):
    extra = {"blocks": [("hog", 30), ("sift-bovw", 40)]} if clf in BLOCK_HEADS else {}
    head = make_classifier(clf, class_weight="balanced", random_state=7, n_jobs=2, **extra)
    params = head.get_params()
    weight_keys = [k for k in params if k.endswith("class_weight")]
    seed_keys = [k for k in params if k.endswith("random_state")]
    assert weight_keys and all(params[k] == "balanced" for k in weight_keys)
    assert seed_keys and any(params[k] == 7 for k in seed_keys)


def test_pipeline_clone_and_params():
    pipe = build_pipeline("hog+lbp", "svm", pca=64, class_weight="balanced", n_jobs=2, clf_params={"C": 5})
    assert isinstance(pipe, Pipeline)
    copy = clone(pipe)
    assert copy.get_params()["clf__estimator__C"] == 5
    assert copy.get_params()["features__hog__n_jobs"] == 2


# --------------------------------------------------------------------------- the fast heads' contract


@pytest.mark.parametrize("clf", ["nystroem", "mlp", "local-svm"])
def test_fast_heads_contract(clf):
    import pickle

    from sklearn.base import clone
    from sklearn.exceptions import NotFittedError

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 8)) * 3
    y = np.repeat(np.array(["a", "b", "c"]), 40)
    X = centres[np.repeat(np.arange(3), 40)] + rng.normal(size=(120, 8))
    head = make_classifier(clf, random_state=3, **({"n_neighbors": 30, "calibration_samples": 60} if clf == "local-svm" else {}))
    with pytest.raises(NotFittedError):
        head.predict_proba(X)
    assert head.fit(X, y) is head
    proba = head.predict_proba(X)
    assert proba.shape == (120, 3) and list(head.classes_) == ["a", "b", "c"]
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert np.mean(head.predict(X) == y) > 0.9
    again = pickle.loads(pickle.dumps(head))
    np.testing.assert_allclose(again.predict_proba(X), proba)
    twin = clone(head)
    assert twin.get_params() == head.get_params() and not hasattr(twin, "classes_")
    np.testing.assert_allclose(twin.fit(X, y).predict_proba(X), proba)  # seeded: the same fit
    with pytest.raises(ValueError, match="features"):
        head.predict_proba(X[:, :5])


def test_nystroem_gamma_scale_is_the_svms():
    from fer_features.heads.estimators import NystroemClassifier

    X = np.random.default_rng(0).normal(size=(60, 4)) * 2
    y = np.tile([0, 1], 30)
    head = NystroemClassifier(n_components=500).fit(X, y)
    assert head.gamma_ == pytest.approx(1 / (4 * X.var()))
    assert head.feature_map_.n_components == 60  # capped at the training samples
    with pytest.raises(ValueError, match="linear"):
        NystroemClassifier(linear="tree").fit(X, y)
    assert NystroemClassifier(linear="svm", n_components=30).fit(X, y).predict_proba(X).shape == (60, 2)


def test_local_svm_is_an_svm_fitted_on_the_neighbours():
    from sklearn.neighbors import NearestNeighbors
    from sklearn.svm import SVC

    from fer_features.heads.estimators import LocalSVMClassifier

    rng = np.random.default_rng(1)
    X = rng.normal(size=(150, 5))
    y = np.where(X[:, 0] + 0.5 * rng.normal(size=150) > 0, "happy", "sad")
    y[:10] = "fear"  # a third class, rare: absent from most neighbourhoods
    head = LocalSVMClassifier(n_neighbors=25, C=3.0, calibration_samples=40).fit(X, y)
    assert head.gamma_ == pytest.approx(1 / (5 * X.astype(np.float32).var()), rel=1e-5)
    assert 0.01 <= head.temperature_ <= 100
    queries = rng.normal(size=(12, 5))
    proba = head.predict_proba(queries)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    rows = NearestNeighbors(n_neighbors=25).fit(X.astype(np.float32)).kneighbors(queries.astype(np.float32), return_distance=False)
    for q, r, p in zip(queries, rows, proba):
        labels = y[r]
        absent = ~np.isin(head.classes_, labels)
        assert np.all(p[absent] == 0)  # classes no neighbour has get nothing
        if len(set(labels)) == 1:
            assert head.classes_[np.argmax(p)] == labels[0]
            continue
        svc = SVC(C=3.0, gamma=head.gamma_).fit(X[r].astype(np.float32), labels)
        assert head.classes_[np.argmax(p)] == svc.predict(q[None].astype(np.float32))[0]


def test_local_svm_rejects_bad_parameters():
    from fer_features.heads.estimators import LocalSVMClassifier

    X, y = np.random.default_rng(0).normal(size=(20, 3)), np.tile([0, 1], 10)
    with pytest.raises(ValueError, match="kernel"):
        LocalSVMClassifier(kernel="poly").fit(X, y)
    with pytest.raises(ValueError, match="n_neighbors"):
        LocalSVMClassifier(n_neighbors=1).fit(X, y)
