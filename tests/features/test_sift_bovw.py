"""The sift-bovw feature (dense SIFT bag of visual words) and the histogram-kernel heads."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import BAD_IMAGES
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from fer_features.features import SIFTBoVW, make_features
from fer_features.features.base import learns_from_data
from fer_features.features.sift_bovw import dense_sift
from fer_features.heads.kernels import HistogramKernelMap, additive_kernel_map


def faces(n=6, size=48, seed=0):
    """Smooth random images (blurred noise): gradients like a face's, not pixel noise."""
    from scipy.ndimage import gaussian_filter

    noise = np.random.default_rng(seed).random((n, size, size))
    smooth = gaussian_filter(noise, sigma=(0, 2, 2))
    smooth = (smooth - smooth.min()) / (smooth.max() - smooth.min())
    return (smooth * 255).astype(np.uint8)


def small(**params):
    return SIFTBoVW(**{"n_words": 8, "pyramid": (1, 2), "n_train_descriptors": 2000, **params})


@pytest.fixture(scope="module")
def crops():
    return faces(6)


@pytest.fixture(scope="module")
def fitted(crops):
    return small().fit(crops)


# --------------------------------------------------------------------------- the contract


def test_shape_dtype_names_and_histogram_mass(fitted, crops):
    out = fitted.transform(crops)
    names = fitted.get_feature_names_out()
    assert out.dtype == np.float32
    assert out.shape == (6, 8 * (1 + 4)) == (len(crops), len(names))
    assert list(names) == [f"sift_bovw{i}" for i in range(out.shape[1])]
    assert fitted.vocabulary_.shape == (8, 128)
    # each level is a distribution, levels weighted 1/2 and 1/2 (Lazebnik, L=1): rows sum to 1
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(out[:, :8].sum(axis=1), 0.5, rtol=1e-5)
    assert (out >= 0).all()


def test_default_length_and_descriptor_count():
    est = SIFTBoVW(n_words=16, n_train_descriptors=3000).fit(faces(4))
    assert est.transform(faces(1)).shape == (1, 16 * 21)
    # bins 4, 6, 8 (windows 16, 24, 32) every 2 pixels of 48: 17², 13², 9² positions
    assert est.n_descriptors_ == 17 * 17 + 13 * 13 + 9 * 9


def test_pickle_round_trip_gives_identical_output(fitted, crops):
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(again.transform(crops), fitted.transform(crops))
    np.testing.assert_array_equal(again.get_feature_names_out(), fitted.get_feature_names_out())


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
    # the largest descriptor (4 bins of 8 pixels) must fit in the image
    with pytest.raises(ValueError, match=r"too small: need at least 33x33"):
        small().fit(np.zeros((2, 20, 20), np.uint8))


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(encoding="tfidf"), "encoding"),
        (dict(n_words=1), "n_words"),
        (dict(step=0), "step"),
        (dict(pyramid=()), "pyramid"),
        (dict(n_words=5000), "cannot make 5000 words"),
    ],
)
def test_bad_params_raise_at_fit(params, match, crops):
    with pytest.raises(ValueError, match=match):
        small(**params).fit(crops)


def test_params_stored_verbatim_and_tags():
    params = dict(n_words=64, bin_sizes=(4,), step=3, pyramid=(1, 3), encoding="presence", norm="l2", sparse_output=True, root=False,
                  mirror=True, n_train_descriptors=10, random_state=7, n_jobs=2)
    est = SIFTBoVW(**params)
    assert est.get_params() == params
    tags = est.__sklearn_tags__()
    assert tags.input_tags.three_d_array and not tags.input_tags.two_d_array
    assert learns_from_data(est) and not learns_from_data(make_features("hog").transformer_list[0][1])


def test_presence_encoding_is_binary_per_level(crops):
    out = small(encoding="presence").fit(crops).transform(crops)
    level0 = out[:, :8]
    nonzero = level0[level0 > 0]
    # every present word of a level carries the same mass
    for row in level0:
        present = row[row > 0]
        np.testing.assert_allclose(present, present[0])
    assert len(nonzero)


def test_vocabulary_depends_only_on_fit_images(crops):
    a = small().fit(crops)
    b = small().fit(crops)
    np.testing.assert_array_equal(a.vocabulary_, b.vocabulary_)  # seeded
    c = small().fit(faces(6, seed=5))
    assert not np.allclose(a.vocabulary_, c.vocabulary_)


def test_parallel_matches_serial():
    X = faces(530, size=36, seed=3)  # two chunks of the base class
    est = small(bin_sizes=(4,), step=4).fit(X[:20])
    serial = est.transform(X)
    np.testing.assert_array_equal(clone(est).set_params(n_jobs=2).fit(X[:20]).transform(X), serial)


def test_registered_in_unions(crops):
    union = make_features("hog+sift-bovw", params={"sift-bovw": {"n_words": 8, "pyramid": (1,)}})
    out = union.fit(crops).transform(crops)
    names = union.get_feature_names_out()
    assert out.shape == (6, 1764 + 8)
    assert names[-1] == "sift-bovw__sift_bovw7"


# --------------------------------------------------------------------------- cross-check against OpenCV


@pytest.mark.parametrize("bin_size", [4, 6, 8])
def test_dense_sift_matches_opencv_sift(bin_size):
    """Same descriptor as OpenCV's SIFT ``compute`` on the same upright keypoints.

    OpenCV's bin width is 1.5 x the keypoint size, its layout (row, column, orientation) and its
    image blurred by sigma 1.6; ours is VLFeat's dense, triangular-pooled computation, so they
    agree closely, not exactly: the matched descriptors are far closer than neighbours are.
    """
    cv2 = pytest.importorskip("cv2")
    X = faces(8, seed=11)
    desc, centres = dense_sift(X, bin_size=bin_size, step=4)
    sift = cv2.SIFT_create()
    matched, shifted = [], []
    for image, mine in zip(X, desc):
        keypoints = [cv2.KeyPoint(float(x) - 0.5, float(y) - 0.5, bin_size / 1.5) for y, x in centres]
        kept, ref = sift.compute(image, keypoints)
        assert len(kept) == len(keypoints)
        ref = ref / np.maximum(np.linalg.norm(ref, axis=1, keepdims=True), 1e-9)
        ok = np.linalg.norm(mine, axis=1) > 0
        matched.append((mine * ref).sum(axis=1)[ok])
        shifted.append((mine * np.roll(ref, 1, axis=0)).sum(axis=1)[ok])
    matched, shifted = np.concatenate(matched), np.concatenate(shifted)
    assert matched.mean() > 0.9
    assert np.percentile(matched, 10) > 0.8
    assert matched.mean() > shifted.mean() + 0.1


def test_dense_sift_is_normalised_and_clipped():
    desc, centres = dense_sift(faces(2), bin_size=4, step=2)
    norms = np.linalg.norm(desc, axis=2)
    np.testing.assert_allclose(norms[norms > 0], 1.0, rtol=1e-5)
    assert desc.max() <= 0.2 / 0.2 and centres.shape == (17 * 17, 2)
    root, _ = dense_sift(faces(2), bin_size=4, step=2, root=True)
    np.testing.assert_allclose((root**2).sum(axis=2)[norms > 0], 1.0, rtol=1e-5)


# --------------------------------------------------------------------------- kernels


def test_chi2_map_is_scikit_learns_additive_chi2_sampler():
    from sklearn.kernel_approximation import AdditiveChi2Sampler

    X = np.random.default_rng(0).random((5, 7))
    X[X < 0.3] = 0
    expected = AdditiveChi2Sampler(sample_steps=2).fit_transform(X)
    np.testing.assert_allclose(additive_kernel_map(X, kernel="chi2"), expected, rtol=1e-5, atol=1e-7)
    sparse = additive_kernel_map(sp.csr_matrix(X), kernel="chi2")
    np.testing.assert_allclose(sparse.toarray(), expected, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(
    "kernel, exact, max_error, mean_error",
    [
        ("chi2", lambda x, y: np.sum(2 * x * y / np.maximum(x + y, 1e-12)), 0.06, 0.03),
        ("intersection", lambda x, y: np.sum(np.minimum(x, y)), 0.25, 0.03),  # a coarser map
        ("hellinger", lambda x, y: np.sum(np.sqrt(x * y)), 1e-5, 1e-5),  # exact
    ],
)
def test_feature_maps_approximate_their_kernels(kernel, exact, max_error, mean_error):
    rng = np.random.default_rng(1)
    H = rng.dirichlet(np.ones(50), size=20)  # L1-normalised histograms
    Z = additive_kernel_map(H, kernel=kernel, sample_steps=3)
    approx = Z @ Z.T
    truth = np.array([[exact(a, b) for b in H] for a in H])
    error = np.abs(approx - truth) / truth.max()
    assert error.max() < max_error and error.mean() < mean_error


def test_histogram_map_blocks_normalise_and_standardise():
    rng = np.random.default_rng(2)
    hist = rng.random((10, 4)) * 7  # a histogram block, not normalised
    other = rng.normal(size=(10, 2))  # landmark-like: negative values
    X = np.hstack([hist, other])
    m = HistogramKernelMap(kernel="hellinger", block_sizes=(4, 2), sparse_output=False).fit(X)
    out = m.transform(X)
    assert list(m.histogram_blocks_) == [True, False]
    np.testing.assert_allclose((out[:, :4] ** 2).sum(axis=1), 1.0, rtol=1e-5)  # sqrt of an L1 histogram
    np.testing.assert_allclose(out[:, 4:].mean(axis=0), 0, atol=1e-6)
    with pytest.raises(ValueError, match="do not add up"):
        HistogramKernelMap(block_sizes=(3, 2)).fit(X)
    with pytest.raises(ValueError, match="kernel must be one of"):
        HistogramKernelMap(kernel="rbf").fit(X)
    assert sp.issparse(HistogramKernelMap(block_sizes=(4, 2)).fit(X).transform(X))


@pytest.mark.parametrize("clf", ["chi2-svm", "intersection-svm"])
def test_histogram_heads_fit_and_predict_proba(clf):
    from fer_features.training.pipelines import build_pipeline

    X = faces(42, seed=4)
    y = np.asarray(["happy", "sad", "angry"] * 14)
    pipe = build_pipeline("hog+sift-bovw", clf, feature_params={"sift-bovw": {"n_words": 8, "pyramid": (1,)}})
    assert pipe.named_steps["scale"] == "passthrough" and pipe.named_steps["pca"] == "passthrough"
    pipe.fit(X, y)
    proba = pipe.predict_proba(X[:3])
    assert proba.shape == (3, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert list(pipe.named_steps["clf"].named_steps["map"].block_sizes) == [1764, 8]


# --------------------------------------------------------------------------- presence vectors, sparse, stacked head

PRESENCE = {"n_words": 8, "pyramid": (1, 2), "n_train_descriptors": 2000, "encoding": "presence", "norm": "l2"}


def test_l2_levels_have_unit_norm_and_sparse_output_is_the_dense_matrix(crops):
    dense = SIFTBoVW(**PRESENCE).fit(crops).transform(crops)
    sparse = SIFTBoVW(**PRESENCE, sparse_output=True).fit(crops).transform(crops)
    assert sp.issparse(sparse) and sparse.format == "csr" and sparse.dtype == np.float32
    np.testing.assert_array_equal(sparse.toarray(), dense)
    np.testing.assert_allclose((dense[:, :8] ** 2).sum(axis=1), 1.0, rtol=1e-5)  # level 0
    np.testing.assert_allclose((dense[:, 8:] ** 2).sum(axis=1), 1.0, rtol=1e-5)  # level 1, its 4 cells together
    # presence: within a level every word that occurs carries the same value
    for row in dense[:, :8]:
        np.testing.assert_allclose(row[row > 0], row[row > 0][0])


def test_sparse_output_in_a_union_and_over_chunks():
    X = faces(530, size=36, seed=3)  # two chunks of the base class
    est = SIFTBoVW(**{**PRESENCE, "bin_sizes": (4,), "step": 4}, sparse_output=True).fit(X[:20])
    out = est.transform(X)
    assert sp.issparse(out) and out.shape == (530, 40)
    np.testing.assert_array_equal(clone(est).set_params(n_jobs=2).fit(X[:20]).transform(X).toarray(), out.toarray())
    union = make_features("hog+sift-bovw", params={"sift-bovw": {**PRESENCE, "sparse_output": True}}).fit(faces(6))
    assert sp.issparse(union.transform(faces(3))) and union.transform(faces(3)).shape == (3, 1764 + 40)


@pytest.mark.parametrize("sparse_output", [False, True])
def test_mirror_is_the_mean_of_both_sides_and_left_right_invariant(crops, sparse_output):
    plain = SIFTBoVW(**PRESENCE, sparse_output=sparse_output).fit(crops)
    mirrored = clone(plain).set_params(mirror=True).fit(crops)
    np.testing.assert_array_equal(mirrored.vocabulary_, plain.vocabulary_)  # learned as without it
    def dense(a):
        return a.toarray() if sp.issparse(a) else a

    flipped = np.ascontiguousarray(crops[:, :, ::-1])
    out = mirrored.transform(crops)
    assert sp.issparse(out) == sparse_output and out.dtype == np.float32 and out.shape == plain.transform(crops).shape
    np.testing.assert_allclose(dense(out), (dense(plain.transform(crops)) + dense(plain.transform(flipped))) / 2, rtol=1e-6)
    np.testing.assert_allclose(dense(mirrored.transform(flipped)), dense(out), rtol=1e-6)
    assert not np.allclose(dense(plain.transform(flipped)), dense(plain.transform(crops)))  # the faces are not symmetric


def test_bad_norm_raises_at_fit(crops):
    with pytest.raises(ValueError, match="norm must be one of 'l1', 'l2'"):
        small(norm="max").fit(crops)


def test_stacked_head_gives_the_bag_of_words_a_linear_branch():
    from fer_features.training.pipelines import build_pipeline, cap_pca

    X = faces(60, seed=4)
    y = np.asarray(["happy", "sad", "angry"] * 20)
    params = {"sift-bovw": {**PRESENCE, "sparse_output": True}}
    pipe = cap_pca(build_pipeline("hog+sift-bovw+lbp", "stacked-svm", feature_params=params), len(X))
    assert pipe.named_steps["scale"] == "passthrough" and pipe.named_steps["pca"] == "passthrough"
    head = pipe.named_steps["clf"]
    (dense_name, dense), (bovw_name, bovw) = head.estimators
    assert (dense_name, bovw_name) == ("hog+lbp", "sift-bovw")
    assert bovw.named_steps["select"].transformers[0][2] == slice(1764, 1764 + 40)  # its own columns only
    dense_cols = dense.named_steps["select"].transformers[0][2]
    assert len(dense_cols) == 1764 + 2124 and 1764 not in dense_cols
    assert dense.named_steps["pca"].n_components == 60 * 2 // 3  # capped: first fitted on 2 of 3 folds of 60
    pipe.fit(X, y)
    proba = pipe.predict_proba(X[:4])
    assert proba.shape == (4, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    again = pickle.loads(pickle.dumps(pipe))
    np.testing.assert_allclose(again.predict_proba(X[:4]), proba, rtol=1e-5)
    # the final model weighs both branches' decision values (3 classes each)
    assert head.final_estimator_.coef_.shape == (3, 3 + 3)  # 3 one-vs-one pairs, 3 one-vs-rest margins


def test_stacked_head_needs_the_blocks():
    from fer_features.training.pipelines import build_head

    with pytest.raises(ValueError, match="name and size of each feature block"):
        build_head("stacked-svm", block_sizes=[10, 20])
