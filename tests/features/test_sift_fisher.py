"""SIFTFisherVector: the sklearn contract, wrong input, and the Fisher vector checked against its formula."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from conftest import BAD_IMAGES
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from test_sift_bovw import faces

from fer_features.features import SIFTBoVW, SIFTFisherVector, make_features
from fer_features.features.base import learns_from_data

SMALL = {"n_components": 3, "pca_components": 5, "pyramid": (1, 2), "n_train_descriptors": 2000}


def small(**params):
    return SIFTFisherVector(**{**SMALL, **params})


@pytest.fixture(scope="module")
def crops():
    return faces(6)


@pytest.fixture(scope="module")
def fitted(crops):
    return small().fit(crops)


def reference_fisher(est, image, rows):
    """The improved Fisher vector of one image's descriptors ``rows``, written out from Perronnin et al. 2010."""
    desc, _ = est._descriptors(image[None])
    x = est.pca_.transform(desc[0][rows].astype(np.float64))
    post = est.gmm_.predict_proba(x)  # (t, K)
    mu, var, w = est.gmm_.means_, est.gmm_.covariances_, est.gmm_.weights_
    dev = (x[:, None, :] - mu[None]) / np.sqrt(var)[None]  # (t, K, D)
    first = (post[:, :, None] * dev).sum(0) / (len(x) * np.sqrt(w)[:, None])
    second = (post[:, :, None] * (dev**2 - 1)).sum(0) / (len(x) * np.sqrt(2 * w)[:, None])
    fv = np.concatenate([first.ravel(), second.ravel()])
    fv = np.sign(fv) * np.sqrt(np.abs(fv))
    return fv / np.linalg.norm(fv)


# --------------------------------------------------------------------------- the contract


def test_shape_dtype_names_and_unit_cells(fitted, crops):
    out = fitted.transform(crops)
    names = fitted.get_feature_names_out()
    cell = 2 * 3 * 5
    assert out.dtype == np.float32
    assert out.shape == (6, 5 * cell) == (len(crops), len(names))
    assert list(names) == [f"sift_fisher{i}" for i in range(out.shape[1])]
    norms = np.linalg.norm(out.reshape(6, 5, cell), axis=2)
    np.testing.assert_allclose(norms, 1.0, rtol=1e-5)  # every pyramid cell L2-normalised
    assert fitted.gmm_.means_.shape == (3, 5) and fitted.pca_.components_.shape == (5, 128)


def test_default_length():
    est = SIFTFisherVector(n_components=4, n_train_descriptors=3000).fit(faces(4))
    assert est.transform(faces(1)).shape == (1, (1 + 4) * 2 * 4 * 64)
    assert est.n_descriptors_ == 17 * 17 + 13 * 13 + 9 * 9  # as SIFTBoVW's: bins 4, 6, 8 every 2 pixels


def test_matches_the_formula_per_cell(fitted, crops):
    """Whole face and the top-right 2x2 cell of each image, against the unvectorised formula in float64."""
    out = fitted.transform(crops)
    cell = 2 * 3 * 5
    _, centres = fitted._descriptors(crops[:1])
    top_right = (centres[:, 0] < 24) & (centres[:, 1] >= 24)
    for i in range(len(crops)):
        np.testing.assert_allclose(out[i, :cell], reference_fisher(fitted, crops[i], slice(None)), atol=2e-5)
        np.testing.assert_allclose(out[i, 2 * cell : 3 * cell], reference_fisher(fitted, crops[i], top_right), atol=2e-5)


def test_mixture_is_scikit_learns_on_the_projected_sample(fitted, crops):
    from sklearn.decomposition import PCA
    from sklearn.mixture import GaussianMixture

    sample, _ = fitted._sample_descriptors(crops)
    pca = PCA(5, random_state=0).fit(sample)
    gmm = GaussianMixture(3, covariance_type="diag", reg_covar=1e-4, random_state=0).fit(pca.transform(sample))
    np.testing.assert_allclose(fitted.pca_.components_, pca.components_, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fitted.gmm_.means_, gmm.means_, rtol=1e-5, atol=1e-6)


def test_pickle_round_trip_gives_identical_output(fitted, crops):
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(again.transform(crops), fitted.transform(crops))
    np.testing.assert_array_equal(again.get_feature_names_out(), fitted.get_feature_names_out())


def test_skops_round_trip_of_a_pipeline(tmp_path, crops):
    from fer_features.persist.files import load_model, save_model
    from fer_features.training.pipelines import build_pipeline, cap_pca

    X = faces(30, seed=2)
    y = np.asarray(["happy", "sad", "angry"] * 10)
    pipe = cap_pca(build_pipeline("sift-fisher", "logreg", feature_params={"sift-fisher": SMALL}), len(X)).fit(X, y)
    path = tmp_path / "fisher.skops"
    save_model(pipe, path)
    np.testing.assert_allclose(load_model(path).predict_proba(X[:3]), pipe.predict_proba(X[:3]), rtol=1e-6)


def test_clone_is_unfitted_and_refits_identically(fitted, crops):
    copy = clone(fitted)
    assert copy.get_params() == fitted.get_params()
    with pytest.raises(NotFittedError):
        copy.transform(crops)
    np.testing.assert_array_equal(copy.fit(crops).transform(crops), fitted.transform(crops))


def test_not_fitted_error(crops):
    with pytest.raises(NotFittedError):
        small().transform(crops)
    with pytest.raises(NotFittedError):
        small().get_feature_names_out()


@BAD_IMAGES
def test_bad_input_is_a_helpful_value_error(bad, match, fitted):
    with pytest.raises(ValueError, match=match):
        small().fit(bad)
    with pytest.raises(ValueError, match=match):
        fitted.transform(bad)


def test_wrong_image_size_at_transform(fitted):
    with pytest.raises(ValueError, match=r"fitted on 48x48 images but got 40x48.*resize"):
        fitted.transform(np.zeros((2, 48, 40), np.uint8))


def test_too_small_images_rejected_at_fit():
    with pytest.raises(ValueError, match=r"too small: need at least 33x33"):
        small().fit(np.zeros((2, 20, 20), np.uint8))


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(n_components=0), "n_components"),
        (dict(pca_components=129), "pca_components"),
        (dict(step=0), "step"),
        (dict(pyramid=()), "pyramid"),
        (dict(n_components=3000, pca_components=5), "cannot fit 3000 components"),
    ],
)
def test_bad_params_raise_at_fit(params, match, crops):
    with pytest.raises(ValueError, match=match):
        small(**params).fit(crops)


def test_params_stored_verbatim_and_tags():
    params = dict(n_components=16, pca_components=32, bin_sizes=(4,), step=3, pyramid=(1, 3), root=False, mirror=True,
                  n_train_descriptors=10, random_state=7, n_jobs=2)
    est = SIFTFisherVector(**params)
    assert est.get_params() == params
    tags = est.__sklearn_tags__()
    assert tags.input_tags.three_d_array and not tags.input_tags.two_d_array
    assert learns_from_data(est)


def test_descriptors_are_the_bag_of_words(crops):
    """Same dense RootSIFT as SIFTBoVW with the same geometry parameters."""
    fv, bovw = small().fit(crops), SIFTBoVW(n_words=4, pyramid=(1, 2), n_train_descriptors=2000).fit(crops)
    for a, b in zip(fv._descriptors(crops), bovw._descriptors(crops)):
        np.testing.assert_array_equal(a, b)


def test_mirror_is_the_mean_of_both_sides_and_left_right_invariant(fitted, crops):
    mirrored = clone(fitted).set_params(mirror=True).fit(crops)
    np.testing.assert_array_equal(mirrored.gmm_.means_, fitted.gmm_.means_)  # learned as without it
    flipped = np.ascontiguousarray(crops[:, :, ::-1])
    out = mirrored.transform(crops)
    np.testing.assert_allclose(out, (fitted.transform(crops) + fitted.transform(flipped)) / 2, rtol=1e-5, atol=1e-7)
    # the 2x2 cells swap sides under the flip; the whole-face cell does not
    np.testing.assert_allclose(mirrored.transform(flipped)[:, :30], out[:, :30], rtol=1e-5, atol=1e-7)
    assert not np.allclose(fitted.transform(flipped), fitted.transform(crops))


def test_parallel_matches_serial():
    X = faces(530, size=36, seed=3)  # two chunks of the base class
    est = small(bin_sizes=(4,), step=4).fit(X[:20])
    np.testing.assert_array_equal(clone(est).set_params(n_jobs=2).fit(X[:20]).transform(X), est.transform(X))


def test_registered_and_given_a_logistic_branch_in_the_stacked_head():
    from fer_features.training.pipelines import build_pipeline, cap_pca

    X = faces(60, seed=4)
    y = np.asarray(["happy", "sad", "angry"] * 20)
    pipe = build_pipeline("hog+sift-fisher", "stacked-svm", feature_params={"sift-fisher": SMALL},
                          clf_params={"linear_model": "logreg", "linear_C": 1.0})
    pipe = cap_pca(pipe, len(X))
    head = pipe.named_steps["clf"]
    [(union_name, union)] = head.estimators  # both branches in one BranchUnion, fitted side by side
    (dense_name, dense), (fisher_name, fisher) = union.estimators
    assert (union_name, dense_name, fisher_name) == ("branches", "hog", "sift-fisher")
    assert dense.named_steps["pca"].n_components == 40  # cap_pca reaches inside the union
    assert fisher.named_steps["select"].transformers[0][2] == slice(1764, 1764 + 5 * 30)
    assert fisher.named_steps["logreg"].C == 1.0
    proba = pipe.fit(X, y).predict_proba(X[:4])
    assert proba.shape == (4, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert head.final_estimator_.coef_.shape == (3, 3 + 3)  # 3 one-vs-one pairs, 3 logistic-regression logits


def test_stacked_head_with_fisher_vectors_saves_and_loads_with_skops(tmp_path):
    from fer_features.persist.files import load_model, save_model
    from fer_features.training.pipelines import build_pipeline, cap_pca

    X = faces(30, seed=5)
    y = np.asarray(["happy", "sad", "angry"] * 10)
    pipe = build_pipeline("hog+sift-fisher", "stacked-svm", feature_params={"sift-fisher": SMALL}, n_jobs=2)
    pipe = cap_pca(pipe, len(X)).fit(X, y)
    again = load_model(save_model(pipe, tmp_path / "stacked.skops"))  # trusts fer_features.heads.estimators.BranchUnion
    # not bit for bit: a reloaded float32 PCA's transform differs in the last digits (as after pickle)
    np.testing.assert_allclose(again.predict_proba(X[:5]), pipe.predict_proba(X[:5]), rtol=1e-5, atol=1e-6)


def test_stacked_head_picks_the_linear_model_by_feature():
    from fer_features.training.pipelines import build_head

    head = build_head("stacked-svm", block_names=["hog", "sift-bovw", "sift-fisher"], block_sizes=[10, 20, 30])
    [(_, union)] = head.named_steps["clf"].estimators
    models = {name: branch.steps[-1] for name, branch in union.estimators}
    assert models["sift-bovw"][0] == "svm" and models["sift-bovw"][1].C == 0.2
    assert models["sift-fisher"][0] == "logreg" and models["sift-fisher"][1].C == 1.0
    assert models["sift-fisher"][1].tol == 1e-3
    forced = build_head("stacked-svm", block_names=["hog", "sift-fisher"], block_sizes=[10, 30],
                        clf_params={"linear_model": "svm", "linear_C": 0.5})
    name, model = forced.named_steps["clf"].estimators[0][1].estimators[1][1].steps[-1]
    assert name == "svm" and model.C == 0.5
    tol = build_head("stacked-svm", block_names=["hog", "sift-fisher"], block_sizes=[10, 30],
                     clf_params={"linear_tol": 1e-4})
    assert tol.named_steps["clf"].estimators[0][1].estimators[1][1].named_steps["logreg"].tol == 1e-4


def test_stacked_head_fits_the_fisher_branch_beside_the_rbf_one_one_fold_at_a_time():
    from sklearn.ensemble import StackingClassifier

    from fer_features.heads.estimators import BranchUnion
    from fer_features.training.pipelines import build_head

    def stacking(blocks, **kw):
        head = build_head("stacked-svm", block_names=list(blocks), block_sizes=[10] * len(blocks), **kw)
        return head.named_steps["clf"]

    for n_jobs in (None, 1, 2, -1):
        head = stacking(["hog", "sift-fisher"], n_jobs=n_jobs)
        [(_, union)] = head.estimators
        # folds one at a time: each copy of the Fisher vectors' Training rows is ~3 GB (fer train
        # with 2 workers was killed for memory); the branches of a fold side by side, on the same rows
        assert head.n_jobs == 1 and isinstance(union, BranchUnion) and union.n_jobs == n_jobs
    assert stacking(["hog", "sift-fisher"], n_jobs=1, clf_params={"branch_jobs": 2}).estimators[0][1].n_jobs == 2
    plain = stacking(["hog", "sift-bovw"], n_jobs=2)  # no dense columns: sklearn's stacking, n_jobs for all
    assert type(plain) is StackingClassifier and plain.n_jobs == 2
    assert [name for name, _ in plain.estimators] == ["hog", "sift-bovw"]
    asked = stacking(["hog", "sift-bovw"], n_jobs=2, clf_params={"branch_jobs": 2})
    assert asked.n_jobs == 1 and asked.estimators[0][1].n_jobs == 2


def test_stacked_head_rejects_an_unknown_linear_model():
    from fer_features.training.pipelines import build_head

    with pytest.raises(ValueError, match="linear_model must be 'auto', 'svm' or 'logreg'"):
        build_head("stacked-svm", block_names=["hog", "sift-fisher"], block_sizes=[10, 20], clf_params={"linear_model": "ridge"})


def test_in_a_union_with_hog(crops):
    union = make_features("hog+sift-fisher", params={"sift-fisher": SMALL}).fit(crops)
    out = union.transform(crops)
    assert out.shape == (6, 1764 + 150) and out.dtype == np.float32
