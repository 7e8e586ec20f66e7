"""Facial geometry from dlib's 68 landmarks, located on the aligned face crop."""

from __future__ import annotations

import os

import numpy as np

from fer_features.features.base import FaceImageTransformer

# iBUG 300-W 68-point markup (0-based): jaw 0-16, brows 17-21 / 22-26, nose 27-35,
# eyes 36-41 / 42-47 (image-left first), outer lips 48-59, inner lips 60-67.
_LEFT_EYE, _RIGHT_EYE = slice(36, 42), slice(42, 48)
_LEFT_BROW, _RIGHT_BROW = slice(17, 22), slice(22, 27)

#: Geometry measures appended after the 136 coordinates, in this order. Distances are in
#: units of the inter-ocular distance (eye centre to eye centre); angles in radians.
GEOMETRY_NAMES = (
    "mouth_width",  # 48-54, outer lip corners
    "mouth_opening",  # 62-66, inner lips, mid
    "lips_height",  # 51-57, outer lips, mid
    "mouth_aspect",  # mouth_opening / inner width 60-64
    "left_eye_opening",  # eye aspect ratio: (|37-41| + |38-40|) / (2 |36-39|)
    "right_eye_opening",  # (|43-47| + |44-46|) / (2 |42-45|)
    "left_brow_eye",  # mean brow 17-21 to eye-centre height
    "right_brow_eye",  # mean brow 22-26 to eye-centre height
    "left_inner_brow_eye",  # 21 to 39 (inner brow to inner eye corner)
    "right_inner_brow_eye",  # 22 to 42
    "inner_brow_gap",  # 21-22 (frown pulls brows together)
    "left_mouth_corner_lift",  # lip-centre height minus corner 48 height (smile > 0)
    "right_mouth_corner_lift",  # same for corner 54
    "nose_to_mouth",  # 33-51
    "nose_to_chin",  # 33-8
    "left_brow_slope",  # angle of 17->21 against the eye line
    "right_brow_slope",  # angle of 22->26
    "left_mouth_corner_angle",  # angle at 48 between 48->50 and 48->58
    "right_mouth_corner_angle",  # angle at 54 between 54->52 and 54->56
    "upper_lip_curve",  # angle at 51 between 51->48 and 51->54
)


def normalise_landmarks(points: np.ndarray) -> np.ndarray:
    """Remove position, scale and in-plane rotation from 68-point landmark sets.

    The mid-point of the two eye centres goes to the origin, the eye line to the x axis
    (image-left eye at negative x) and the inter-ocular distance to 1.

    Parameters
    ----------
    points : ndarray of shape (n_samples, 68, 2)
        ``(x, y)`` in pixels, y down.

    Returns
    -------
    normalised : ndarray of shape (n_samples, 68, 2), dtype float32
    """
    points = np.asarray(points, np.float64)
    left = points[:, _LEFT_EYE].mean(1)
    right = points[:, _RIGHT_EYE].mean(1)
    centre = (left + right) / 2
    d = right - left
    iod = np.maximum(np.hypot(d[:, 0], d[:, 1]), 1e-6)
    cos, sin = d[:, 0] / iod, d[:, 1] / iod
    # rotate by -angle: [x', y'] = [cos x + sin y, -sin x + cos y]
    rel = points - centre[:, None, :]
    x = (cos[:, None] * rel[..., 0] + sin[:, None] * rel[..., 1]) / iod[:, None]
    y = (-sin[:, None] * rel[..., 0] + cos[:, None] * rel[..., 1]) / iod[:, None]
    return np.stack([x, y], axis=-1).astype(np.float32)


def geometry(normalised: np.ndarray) -> np.ndarray:
    """The measures of :data:`GEOMETRY_NAMES` from normalised landmarks.

    Parameters
    ----------
    normalised : ndarray of shape (n_samples, 68, 2)
        Output of :func:`normalise_landmarks`.

    Returns
    -------
    measures : ndarray of shape (n_samples, 20), dtype float32
    """
    p = np.asarray(normalised, np.float64)

    def dist(a, b):
        return np.linalg.norm(p[:, a] - p[:, b], axis=1)

    def angle_at(c, a, b):
        u, v = p[:, a] - p[:, c], p[:, b] - p[:, c]
        cos = (u * v).sum(1) / np.maximum(np.linalg.norm(u, axis=1) * np.linalg.norm(v, axis=1), 1e-9)
        return np.arccos(np.clip(cos, -1.0, 1.0))

    def slope(a, b):
        d = p[:, b] - p[:, a]
        return np.arctan2(-d[:, 1], d[:, 0])  # y is down: rising line is positive

    eye_y = (p[:, _LEFT_EYE, 1].mean(1) + p[:, _RIGHT_EYE, 1].mean(1)) / 2
    lip_centre_y = (p[:, 51, 1] + p[:, 57, 1]) / 2
    inner_width = np.maximum(dist(60, 64), 1e-6)
    measures = [
        dist(48, 54),
        dist(62, 66),
        dist(51, 57),
        dist(62, 66) / inner_width,
        (dist(37, 41) + dist(38, 40)) / np.maximum(2 * dist(36, 39), 1e-6),
        (dist(43, 47) + dist(44, 46)) / np.maximum(2 * dist(42, 45), 1e-6),
        eye_y - p[:, _LEFT_BROW, 1].mean(1),
        eye_y - p[:, _RIGHT_BROW, 1].mean(1),
        dist(21, 39),
        dist(22, 42),
        dist(21, 22),
        lip_centre_y - p[:, 48, 1],
        lip_centre_y - p[:, 54, 1],
        dist(33, 51),
        dist(33, 8),
        slope(17, 21),
        -slope(22, 26),  # mirrored, so both brows read the same way
        angle_at(48, 50, 58),
        angle_at(54, 52, 56),
        angle_at(51, 48, 54),
    ]
    return np.stack(measures, axis=1).astype(np.float32)


class LandmarkFeatures(FaceImageTransformer):
    """Face geometry from dlib's 68-point landmarks located on each face crop.

    The crop is upsampled (``upscale``) so the shape predictor [1]_ sees a face of the size it
    was trained on, the predictor is run in a fixed box framing the face (``box``; FER2013
    crops are already centred faces), optionally refined by running dlib's face detector
    first (``detect=True``). The 68 points are normalised for position, scale and in-plane
    rotation (:func:`normalise_landmarks`: eye centres to (-0.5, 0) and (0.5, 0)) and the 136
    coordinates are followed by 20 distances and angles that track the action units of
    expressions (:data:`GEOMETRY_NAMES`: mouth opening and width, eye opening, brow-eye
    distances, mouth-corner lift, brow slopes, lip angles).

    Parameters
    ----------
    upscale : int, default=4
        Integer factor the crop is enlarged by (bicubic) before landmarking; a 48x48 crop
        becomes 192x192.
    box : tuple of 4 float, default=(0.06, 0.15, 0.91, 0.93)
        Face box ``(left, top, right, bottom)`` as fractions of the crop's width and height.
        The default is the median box dlib's HOG detector found on 343 of 500 sampled FER2013
        Training crops; ``python benchmarks/calibrate_alignment.py --n 3000`` gives
        (0.08, 0.15, 0.92, 0.93) on a larger sample, one or two pixels away at 192 px.
    detect : bool, default=False
        Run the HOG face detector on each upscaled crop and use its box when it finds exactly
        one face (about 4 ms more per image); otherwise ``box``.
    predictor_path : str, optional
        dlib 68-point model file; defaults to ``shape_predictor_68_face_landmarks.dat`` from
        ``face-recognition-models``.
    n_jobs : int, default=None
        Parallel joblib workers over chunks of images; ``None`` means 1, ``-1`` all cores.

    Attributes
    ----------
    image_shape_ : tuple of (int, int)
        Height and width of the images seen in ``fit``, in pixels.

    Notes
    -----
    Output is ``(n_samples, 156)`` float32: ``x0, y0, …, x67, y67`` then the 20 measures,
    named as :meth:`get_feature_names_out` says. Landmarks on a 48x48 crop are coarse: they
    carry the gross shape (mouth open, brows raised) rather than fine detail, which is why
    this feature is usually fused with appearance features such as HOG.

    References
    ----------
    .. [1] Kazemi, V. and Sullivan, J. "One millisecond face alignment with an ensemble of
           regression trees." CVPR 2014. :doi:`10.1109/CVPR.2014.241`
    .. [2] Sagonas, C., et al. "300 Faces in-the-wild challenge." ICCV Workshops 2013.
           :doi:`10.1109/ICCVW.2013.59` (the 68-point markup)

    Examples
    --------
    >>> import numpy as np
    >>> from fer_features.features import LandmarkFeatures
    >>> LandmarkFeatures().fit_transform(np.full((2, 48, 48), 128, np.uint8)).shape
    (2, 156)
    """

    _min_size = 8
    _feature_prefix = "landmarks"

    def __init__(self, *, upscale=4, box=(0.06, 0.15, 0.91, 0.93), detect=False, predictor_path=None, n_jobs=None):
        self.upscale = upscale
        self.box = box
        self.detect = detect
        self.predictor_path = predictor_path
        self.n_jobs = n_jobs

    def _check_params(self) -> None:
        from fer_features.faces.dlib_models import dlib_model_path

        if int(self.upscale) != self.upscale or self.upscale < 1:
            raise ValueError(f"upscale must be a positive integer, got {self.upscale!r}")
        left, top, right, bottom = self.box
        if not (0 <= left < right <= 1.5 and 0 <= top < bottom <= 1.5):
            raise ValueError(f"box must be (left, top, right, bottom) fractions with left < right and top < bottom, got {self.box!r}")
        path = self.predictor_path or dlib_model_path("landmarks68")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"dlib shape predictor file {path} not found")

    def _n_features(self, image_shape):
        return 136 + len(GEOMETRY_NAMES)

    def get_feature_names_out(self, input_features=None):
        """Names ``x0, y0, …, x67, y67`` followed by :data:`GEOMETRY_NAMES`; ndarray of str objects."""
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self, "_n_features_out")
        coords = [f"{axis}{i}" for i in range(68) for axis in ("x", "y")]
        return np.asarray(coords + list(GEOMETRY_NAMES), dtype=object)

    def locate(self, X) -> np.ndarray:
        """The 68 landmarks of each crop, in pixels of the crop.

        Parameters
        ----------
        X : ndarray of shape (n_samples, height, width), dtype uint8

        Returns
        -------
        points : ndarray of shape (n_samples, 68, 2), dtype float32
            ``(x, y)`` per point, iBUG 300-W order.
        """
        from PIL import Image

        from fer_features.extras import import_optional
        from fer_features.faces.dlib_models import face_detector, shape_predictor

        dlib = import_optional("dlib", "the landmarks feature")

        predictor = shape_predictor(self.predictor_path)
        s = int(self.upscale)
        h, w = X.shape[1:]
        left, top, right, bottom = self.box
        fixed = dlib.rectangle(int(left * w * s), int(top * h * s), int(right * w * s), int(bottom * h * s))
        detector = face_detector("hog") if self.detect else None
        out = np.empty((len(X), 68, 2), np.float32)
        for i, image in enumerate(X):
            big = np.asarray(Image.fromarray(image).resize((w * s, h * s), Image.BICUBIC)) if s > 1 else image
            rect = fixed
            if detector is not None:
                found = detector(big, 0)
                if len(found) == 1:
                    rect = found[0]
            shape = predictor(big, rect)
            out[i] = [(p.x / s, p.y / s) for p in shape.parts()]
        return out

    def _extract(self, X):
        normalised = normalise_landmarks(self.locate(X))
        return np.concatenate([normalised.reshape(len(X), -1), geometry(normalised)], axis=1)
