"""The image transformers: HOGFeatures, LBPFeatures, LandmarkFeatures."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from conftest import BAD_IMAGES
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from fer_features.features import HOGFeatures, LandmarkFeatures, LBPFeatures
from fer_features.features.landmarks import GEOMETRY_NAMES, geometry, normalise_landmarks

TRANSFORMERS = [HOGFeatures, LBPFeatures, LandmarkFeatures]
EXPECTED_PREFIX = {HOGFeatures: "hog", LBPFeatures: "lbp"}


def faces(n=3, size=48, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size), dtype=np.uint8)


@pytest.fixture(scope="module")
def crops():
    return faces(3)


# --------------------------------------------------------------------------- common contract


@pytest.mark.parametrize("cls", TRANSFORMERS)
def test_output_shape_dtype_and_names(cls, crops):
    est = cls()
    out = est.fit(crops).transform(crops)
    names = est.get_feature_names_out()
    assert out.dtype == np.float32
    assert out.shape == (len(crops), len(names))
    assert len(set(names)) == len(names)
    if cls is LandmarkFeatures:
        assert list(names[:4]) == ["x0", "y0", "x1", "y1"]
        assert list(names[134:136]) == ["x67", "y67"]
        assert list(names[136:]) == list(GEOMETRY_NAMES)
        assert names[136] == "mouth_width"
    else:
        prefix = EXPECTED_PREFIX[cls]
        assert list(names) == [f"{prefix}{i}" for i in range(out.shape[1])]


def test_default_feature_lengths(crops):
    # the numbers the docstrings promise, recomputed from the documented formulas
    n_blocks = 48 // 6 - 2 + 1
    assert HOGFeatures().fit_transform(crops).shape[1] == 9 * 2 * 2 * n_blocks * n_blocks
    assert LBPFeatures().fit_transform(crops).shape[1] == 6 * 6 * (8 * 7 + 3)
    assert LandmarkFeatures().fit_transform(crops).shape[1] == 68 * 2 + len(GEOMETRY_NAMES)


@pytest.mark.parametrize("cls", TRANSFORMERS)
def test_pickle_round_trip_gives_identical_output(cls, crops):
    est = cls().fit(crops)
    again = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(again.transform(crops), est.transform(crops))
    np.testing.assert_array_equal(again.get_feature_names_out(), est.get_feature_names_out())


@pytest.mark.parametrize("cls", TRANSFORMERS)
def test_clone_is_unfitted_with_same_params(cls, crops):
    est = cls().fit(crops)
    copy = clone(est)
    assert copy.get_params() == est.get_params()
    with pytest.raises(NotFittedError):
        copy.transform(crops)
    np.testing.assert_array_equal(copy.fit(crops).transform(crops), est.transform(crops))


@pytest.mark.parametrize("cls", TRANSFORMERS)
def test_not_fitted_error(cls, crops):
    est = cls()
    with pytest.raises(NotFittedError):
        est.transform(crops)
    with pytest.raises(NotFittedError):
        est.get_feature_names_out()


@pytest.mark.parametrize("cls", TRANSFORMERS)
@BAD_IMAGES
def test_bad_input_is_a_helpful_value_error(cls, bad, match, crops):
    with pytest.raises(ValueError, match=match):
        cls().fit(bad)
    fitted = cls().fit(crops)
    with pytest.raises(ValueError, match=match):
        fitted.transform(bad)


@pytest.mark.parametrize("cls", TRANSFORMERS)
@pytest.mark.parametrize("shape", [(2, 48, 40), (2, 40, 48)], ids=["narrower", "shorter"])
def test_wrong_image_size_at_transform(cls, shape, crops):
    est = cls().fit(crops)
    h, w = shape[1:]
    # the message names both sizes and says what to do
    with pytest.raises(ValueError, match=rf"fitted on 48x48 images but got {w}x{h}.*resize"):
        est.transform(np.zeros(shape, np.uint8))


@pytest.mark.parametrize("cls", [HOGFeatures, LBPFeatures])
def test_too_small_images_rejected_at_fit(cls):
    with pytest.raises(ValueError, match="too small|does not fit"):
        cls().fit(np.zeros((1, 2, 2), np.uint8))


@pytest.fixture
def small_pool_threshold(monkeypatch):
    """Let batches of a few hundred images reach the worker pool (the real threshold is 2,048)."""
    from fer_features.features import base

    monkeypatch.setattr(base, "PARALLEL_MIN_IMAGES", 500)


def test_parallel_matches_serial_hog_lbp(small_pool_threshold):
    # > 512 images, so the transform is split into several chunks run by 2 workers
    X = faces(600, size=12, seed=1)
    for est in (HOGFeatures(pixels_per_cell=(4, 4)), LBPFeatures(grid=(2, 2))):
        serial = est.set_params(n_jobs=1).fit(X).transform(X)
        parallel = clone(est).set_params(n_jobs=2).fit(X).transform(X)
        assert parallel.shape == (600, serial.shape[1])
        np.testing.assert_array_equal(parallel, serial)


def test_parallel_matches_serial_landmarks(small_pool_threshold):
    X = faces(520, size=16, seed=2)  # small crops, no upscaling: cheap, still two chunks
    serial = LandmarkFeatures(upscale=1, n_jobs=1).fit(X).transform(X)
    parallel = LandmarkFeatures(upscale=1, n_jobs=2).fit(X).transform(X)
    np.testing.assert_array_equal(parallel, serial)


def test_small_batches_never_start_a_worker_pool(monkeypatch):
    # one photo's faces (or a video's batch of frames) must not pay for a process pool;
    # a batch of PARALLEL_MIN_IMAGES or more does use it
    from fer_features.features import base

    calls = []

    class Recorder(base.Parallel):
        def __init__(self, *args, **kwargs):
            calls.append(kwargs.get("n_jobs"))
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(base, "Parallel", Recorder)
    est = HOGFeatures(pixels_per_cell=(4, 4), n_jobs=2).fit(faces(1, size=12))
    for n in (1, 8, 600):
        est.transform(faces(n, size=12))
    assert calls == []
    monkeypatch.setattr(base, "PARALLEL_MIN_IMAGES", 600)
    est.transform(faces(600, size=12))
    assert calls == [2]


# --------------------------------------------------------------------------- sklearn conventions


@pytest.mark.parametrize("cls", TRANSFORMERS)
def test_tags_declare_3d_input(cls):
    tags = cls().__sklearn_tags__()
    assert tags.input_tags.three_d_array is True
    assert tags.input_tags.two_d_array is False
    assert tags.requires_fit is True


@pytest.mark.parametrize(
    "cls, params",
    [
        (HOGFeatures, dict(orientations=12, pixels_per_cell=(8, 8), cells_per_block=(3, 3), block_norm="L1",
                           transform_sqrt=True, n_jobs=2)),
        (LBPFeatures, dict(n_points=16, radius=2.5, method="uniform", grid=(4, 3), n_jobs=2)),
        (LandmarkFeatures, dict(upscale=2, box=(0.1, 0.1, 0.9, 0.9), detect=True, predictor_path="x.dat", n_jobs=2)),
    ],
)
def test_params_stored_verbatim(cls, params):
    est = cls(**params)
    got = est.get_params()
    assert got == params
    for key, value in params.items():
        assert got[key] is value  # stored as given: not copied, converted or validated in __init__


@pytest.mark.parametrize("cls", TRANSFORMERS)
def test_fit_returns_self_and_sets_image_shape(cls):
    est = cls()
    X = faces(2, size=24)
    assert est.fit(X) is est
    assert est.image_shape_ == (24, 24)


@pytest.mark.parametrize(
    "est, match",
    [
        (HOGFeatures(block_norm="L3"), "block_norm"),
        (LBPFeatures(method="ror"), "method"),
        (LBPFeatures(grid=(60, 6)), "grid"),
        (LandmarkFeatures(upscale=0), "upscale"),
        (LandmarkFeatures(box=(0.9, 0.1, 0.1, 0.9)), "box"),
    ],
)
def test_bad_params_raise_at_fit(est, match, crops):
    with pytest.raises(ValueError, match=match):
        est.fit(crops)


def test_missing_predictor_file(crops, tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.dat"):
        LandmarkFeatures(predictor_path=str(tmp_path / "nope.dat")).fit(crops)


# --------------------------------------------------------------------------- HOG


def test_hog_matches_skimage(crops):
    from skimage.feature import hog

    image = crops[1]
    expected = hog(image, orientations=9, pixels_per_cell=(6, 6), cells_per_block=(2, 2), block_norm="L2-Hys")
    got = HOGFeatures().fit(crops).transform(crops)[1]
    np.testing.assert_allclose(got, expected.astype(np.float32), rtol=1e-6, atol=1e-7)

    est = HOGFeatures(orientations=6, pixels_per_cell=(8, 8), cells_per_block=(1, 1), block_norm="L1")
    expected = hog(image, orientations=6, pixels_per_cell=(8, 8), cells_per_block=(1, 1), block_norm="L1")
    np.testing.assert_allclose(est.fit(crops).transform(crops)[1], expected.astype(np.float32), rtol=1e-6, atol=1e-7)


# --------------------------------------------------------------------------- LBP


@pytest.mark.parametrize("method, n_bins", [("nri_uniform", 59), ("uniform", 10), ("default", 256)])
def test_lbp_cell_histograms_sum_to_one(method, n_bins, crops):
    est = LBPFeatures(method=method, grid=(5, 7)).fit(crops)  # 48 is no multiple of 5 or 7
    out = est.transform(crops)
    assert est.n_bins_ == n_bins
    hists = out.reshape(len(crops), 5 * 7, n_bins)
    np.testing.assert_allclose(hists.sum(axis=2), 1.0, rtol=1e-5)
    assert (hists >= 0).all()


def test_lbp_first_cell_matches_skimage(crops):
    from skimage.feature import local_binary_pattern

    out = LBPFeatures().fit(crops).transform(crops)
    codes = local_binary_pattern(crops[0], 8, 1, "nri_uniform").astype(int)
    cell = codes[:8, :8]  # 6x6 grid on 48x48: the first cell is the top-left 8x8 pixels
    expected = np.bincount(cell.ravel(), minlength=59) / 64
    np.testing.assert_allclose(out[0, :59], expected, rtol=1e-6)


# --------------------------------------------------------------------------- landmarks


def _face_like_points(seed=0) -> np.ndarray:
    """A plausible 68-point set (x, y pixels): jaw arc, brows, nose, eyes and lips, jittered."""
    rng = np.random.default_rng(seed)
    t = np.linspace(np.pi, 2 * np.pi, 17)
    jaw = np.stack([24 + 20 * np.cos(t), 22 - 22 * np.sin(t)], 1)
    brows = np.stack([np.r_[np.linspace(8, 20, 5), np.linspace(28, 40, 5)], [14, 12, 11, 12, 13, 13, 12, 11, 12, 14]], 1)
    nose = np.stack([np.r_[[24] * 4, np.linspace(20, 28, 5)], np.r_[np.linspace(18, 28, 4), [31] * 5]], 1)
    a = np.linspace(0, 2 * np.pi, 7)[:-1]
    left_eye = np.stack([15 - 4 * np.cos(a), 19 - 1.5 * np.sin(a)], 1)
    right_eye = np.stack([33 - 4 * np.cos(a), 19 - 1.5 * np.sin(a)], 1)
    b = np.linspace(0, 2 * np.pi, 13)[:-1]
    outer = np.stack([24 - 8 * np.cos(b), 37 - 3 * np.sin(b)], 1)
    c = np.linspace(0, 2 * np.pi, 9)[:-1]
    inner = np.stack([24 - 6 * np.cos(c), 37 - 1.5 * np.sin(c)], 1)
    pts = np.concatenate([jaw, brows, nose, left_eye, right_eye, outer, inner])
    assert pts.shape == (68, 2)
    return pts + rng.normal(0, 0.3, pts.shape)


def _similarity(points, angle, scale, shift):
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return points @ rot.T * scale + np.asarray(shift)


@pytest.mark.parametrize("angle, scale, shift", [(0.0, 1.0, (0, 0)), (0.7, 3.2, (100, -40)), (-2.5, 0.4, (-7, 13))])
def test_normalise_puts_eyes_at_fixed_points(angle, scale, shift):
    pts = _similarity(_face_like_points(), angle, scale, shift)
    norm = normalise_landmarks(pts[None])[0]
    assert norm.dtype == np.float32
    np.testing.assert_allclose(norm[36:42].mean(0), [-0.5, 0.0], atol=1e-5)
    np.testing.assert_allclose(norm[42:48].mean(0), [0.5, 0.0], atol=1e-5)


def test_normalise_removes_rotation_scale_translation():
    base = _face_like_points(1)
    moved = np.stack([_similarity(base, a, s, d) for a, s, d in [(0.3, 2.0, (5, 9)), (-1.2, 0.5, (-30, 2))]])
    norm = normalise_landmarks(moved)
    np.testing.assert_allclose(norm[0], normalise_landmarks(base[None])[0], atol=1e-5)
    np.testing.assert_allclose(norm[1], norm[0], atol=1e-5)


def test_geometry_is_invariant_to_similarity_transforms():
    base = _face_like_points(2)
    reference = geometry(normalise_landmarks(base[None]))[0]
    assert reference.shape == (len(GEOMETRY_NAMES),) and reference.dtype == np.float32
    for angle, scale, shift in [(0.4, 1.7, (12, -3)), (3.0, 0.25, (-50, 80)), (-0.9, 6.0, (0, 0))]:
        moved = geometry(normalise_landmarks(_similarity(base, angle, scale, shift)[None]))[0]
        np.testing.assert_allclose(moved, reference, atol=1e-4)
    # and it measures what it says: the mouth width in inter-ocular units
    iod = np.linalg.norm(base[42:48].mean(0) - base[36:42].mean(0))
    np.testing.assert_allclose(reference[0], np.linalg.norm(base[48] - base[54]) / iod, rtol=1e-4)


def test_landmarks_on_real_faces(real_faces):
    est = LandmarkFeatures().fit(real_faces)
    points = est.locate(real_faces)
    assert points.shape == (len(real_faces), 68, 2)
    eyes_y = np.maximum(points[:, 36:42, 1].mean(1), points[:, 42:48, 1].mean(1))
    mouth_y = points[:, 48:68, 1].mean(1)
    nose_tip_y = points[:, 33, 1]
    assert (mouth_y > nose_tip_y).all() and (nose_tip_y > eyes_y).all()
    # left eye left of the right eye, everything inside the crop
    assert (points[:, 36:42, 0].mean(1) < points[:, 42:48, 0].mean(1)).all()
    assert (points >= -2).all() and (points <= 50).all()

    out = est.transform(real_faces)
    names = list(est.get_feature_names_out())
    col = {n: out[:, i] for i, n in enumerate(names)}
    assert (col["mouth_width"] > 0).all()
    assert (col["nose_to_chin"] > col["nose_to_mouth"]).all()
    left_eye_x = np.mean([col[f"x{i}"] for i in range(36, 42)], axis=0)
    right_eye_y = np.mean([col[f"y{i}"] for i in range(42, 48)], axis=0)
    np.testing.assert_allclose(left_eye_x, -0.5, atol=1e-5)
    np.testing.assert_allclose(right_eye_y, 0.0, atol=1e-5)
    assert (np.mean([col[f"y{i}"] for i in range(48, 68)], axis=0) > 0).all()  # mouth below the eye line
