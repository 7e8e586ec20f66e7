"""Faces in photos: reading images, detection, 68-point landmarks, alignment to FER2013 crops.

The flow is the field's: image → face detection (box, and eye points where the detector gives
them) → similarity alignment on the eye centres → 48x48 grey crop framed like a FER2013 face.
Detectors are registered by name in :mod:`fer_features.detectors` (``yuface``, dlib's ``hog``
and ``mmod``). When the detector gives no eye points (dlib's), or 68 landmarks are asked for,
the eyes come from dlib's 68-point shape predictor [1]_ [2]_ (iBUG 300-W markup) in the box; its
model is the file shipped by the ``face-recognition-models`` package (nothing is downloaded).

Coordinates are in pixels of the image given, ``x`` to the right and ``y`` down; boxes are
``(left, top, right, bottom)``.

References
----------
.. [1] King, D. E. "Dlib-ml: A machine learning toolkit." JMLR 10, 2009.
.. [2] Kazemi, V. and Sullivan, J. "One millisecond face alignment with an ensemble of regression
       trees." CVPR 2014. :doi:`10.1109/CVPR.2014.241`
.. [3] Sagonas, C., et al. "300 Faces in-the-wild challenge: The first facial landmark
       localization challenge." ICCV Workshops 2013. :doi:`10.1109/ICCVW.2013.59`
"""

from __future__ import annotations

import functools
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fer_features.config import ENV_DLIB_MODELS
from fer_features.config import IMAGE_SIZE as CROP_SIZE  # side of the aligned crop (FER2013's)
from fer_features.detectors import DEFAULT_DETECTOR, Detection, get_detector
from fer_features.extras import import_optional
from fer_features.images import ImageError  # re-exported: faces.ImageError is images.ImageError

#: Where the eye centres (mean of the six landmarks of each eye) fall in a 48x48 FER2013 crop,
#: in pixels ``(x, y)``: the image-left eye (the subject's right eye) first. Medians over the
#: 2,037 of 3,000 sampled Training crops where dlib found exactly one face (interquartile range
#: about 2.5 px), measured by ``python benchmarks/calibrate_alignment.py --n 3000``.
FER2013_EYES = ((15.1, 19.0), (32.8, 18.8))

#: dlib model files shipped by ``face-recognition-models``, by short name.
DLIB_MODELS = {
    "landmarks68": "shape_predictor_68_face_landmarks.dat",
    "landmarks5": "shape_predictor_5_face_landmarks.dat",
    "mmod": "mmod_human_face_detector.dat",
    "resnet": "dlib_face_recognition_resnet_model_v1.dat",
}

# 68-point iBUG indices of the two eyes (image-left first).
LEFT_EYE = slice(36, 42)
RIGHT_EYE = slice(42, 48)


def dlib_model_path(name: str) -> Path:
    """Path of a dlib model file shipped by ``face-recognition-models``.

    Parameters
    ----------
    name : {'landmarks68', 'landmarks5', 'mmod', 'resnet'}

    Returns
    -------
    Path
        The file, from ``$FER_FEATURES_DLIB_MODELS`` if set, else from the installed
        ``face_recognition_models`` package.

    Raises
    ------
    ValueError
        If ``name`` is unknown.
    FileNotFoundError
        If the file is not there; the message says how to install it.
    """
    if name not in DLIB_MODELS:
        raise ValueError(f"unknown dlib model {name!r}; expected one of {', '.join(DLIB_MODELS)}")
    folder = os.environ.get(ENV_DLIB_MODELS)
    if folder is None:
        # Located without importing the package: its __init__ needs pkg_resources.
        spec = importlib.util.find_spec("face_recognition_models")
        if spec is None or not spec.submodule_search_locations:
            raise FileNotFoundError(
                f"dlib model {DLIB_MODELS[name]} not found: install it with "
                "`pip install 'fer-features[train]'` (face-recognition-models), or set FER_FEATURES_DLIB_MODELS to a folder holding it"
            )
        folder = Path(list(spec.submodule_search_locations)[0]) / "models"
    path = Path(folder) / DLIB_MODELS[name]
    if not path.is_file():
        raise FileNotFoundError(
            f"dlib model file {path} is missing: reinstall `face-recognition-models`, "
            "or set FER_FEATURES_DLIB_MODELS to a folder holding it"
        )
    return path


@functools.lru_cache(maxsize=4)
def shape_predictor(path: str | os.PathLike | None = None):
    """The dlib 68-point shape predictor, loaded once per process (``None``: the shipped model)."""
    dlib = import_optional("dlib", "the 68-point landmark predictor")

    return dlib.shape_predictor(str(path or dlib_model_path("landmarks68")))


@functools.lru_cache(maxsize=4)
def face_detector(kind: str = "hog", path: str | os.PathLike | None = None):
    """A dlib face detector, loaded once per process.

    Parameters
    ----------
    kind : {'hog', 'mmod'}, default='hog'
        ``'hog'``: the frontal HOG + linear SVM detector; ``'mmod'``: the MMOD CNN detector [1]_
        (more robust to pose, about 10x slower on a CPU).
    path : path-like, optional
        MMOD model file; defaults to the shipped one.

    Raises
    ------
    ValueError
        If ``kind`` is unknown.
    ImportError
        If dlib is not installed (``pip install 'fer-features[train]'``).
    """
    dlib = import_optional("dlib", f"the {kind} face detector")

    if kind == "hog":
        return dlib.get_frontal_face_detector()
    if kind == "mmod":
        return dlib.cnn_face_detection_model_v1(str(path or dlib_model_path("mmod")))
    raise ValueError(f"unknown dlib face detector {kind!r}; expected 'hog' or 'mmod'")


def load_image(path: str | os.PathLike, *, max_pixels: int | None = None) -> np.ndarray:
    """Read a photo as 8-bit RGB, upright, refusing images over the pixel limit.

    EXIF orientation is applied; grey, palette, RGBA (composited on white), 16-bit and
    32-bit integer or float images are converted. The pixel count is checked from the header
    before decoding (see :func:`fer_features.images.decode_image`).

    Parameters
    ----------
    path : str or path-like
    max_pixels : int, optional
        Largest ``width * height`` read; default :func:`fer_features.images.default_max_pixels`
        (25 megapixels unless ``$FER_MAX_PIXELS`` says otherwise).

    Returns
    -------
    image : ndarray of shape (height, width, 3), dtype uint8

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ImageError
        If it is empty, not an image Pillow can decode, truncated, or over the pixel limit
        (:class:`~fer_features.images.TooManyPixelsError`).
    """
    from fer_features.images import decode_image

    return decode_image(path, max_pixels=max_pixels)


def to_rgb(image) -> np.ndarray:
    """Convert a PIL image or an array to ``(height, width, 3)`` uint8 RGB.

    Arrays may be ``(h, w)`` grey, ``(h, w, 3)`` RGB or ``(h, w, 4)`` RGBA, of any integer
    dtype (uint16 and Pillow's 16-bit modes scaled by 1/257; wider integers by 1/257 when they fit
    in 16 bits, else by their maximum; values up to 255 kept) or float in 0..1.
    """
    from PIL import Image

    if isinstance(image, Image.Image):
        if image.mode.startswith("I;16"):
            image = np.asarray(image).astype(np.uint16)
        elif image.mode in ("I", "F"):
            image = np.asarray(image)
        elif image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
            rgba = image.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"))
        else:
            return np.asarray(image.convert("RGB"))
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        if np.issubdtype(arr.dtype, np.floating):
            arr = np.clip(arr * 255.0 if arr.max() <= 1.0 else arr, 0, 255).round().astype(np.uint8)
        elif arr.dtype == np.uint16:  # 16-bit: full range 0..65535
            arr = (arr.astype(np.float64) / 257.0).round().astype(np.uint8)
        elif arr.max() > 255:  # 32-bit integers of unknown range: 16-bit if they fit, else by the maximum
            top = 65535.0 if arr.max() <= 65535 else float(arr.max())
            arr = (np.clip(arr, 0, None).astype(np.float64) / top * 255).round().astype(np.uint8)
        else:
            arr = np.clip(arr, 0, 255).astype(np.uint8)
    if arr.ndim == 2:
        return np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim == 3 and arr.shape[2] == 4:
        alpha = arr[:, :, 3:4].astype(np.float32) / 255.0
        return (arr[:, :, :3] * alpha + 255.0 * (1.0 - alpha)).round().astype(np.uint8)
    if arr.ndim == 3 and arr.shape[2] == 3:
        return np.ascontiguousarray(arr)
    raise ImageError(f"unsupported image array of shape {arr.shape}")


def to_grey(rgb: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma of an RGB image, ``(h, w)`` uint8 (as PIL's ``convert('L')``, which made FER2013's grey)."""
    if rgb.ndim == 2:
        return rgb
    weights = np.array([0.299, 0.587, 0.114], np.float32)
    return np.clip(rgb[..., :3].astype(np.float32) @ weights, 0, 255).round().astype(np.uint8)


@dataclass
class Face:
    """One face found in a photo.

    Attributes
    ----------
    box : tuple of 4 int
        ``(left, top, right, bottom)`` in pixels of the photo.
    landmarks : ndarray of shape (68, 2), dtype float32, or None
        iBUG 300-W points ``(x, y)`` in pixels of the photo; ``None`` where the face was aligned
        from the detector's eye points and no landmarks were asked for.
    crop : ndarray of shape (48, 48), dtype uint8
        The aligned grey face, framed as FER2013 faces are.
    score : float
        Detector confidence (higher is surer; the scale is the detector's).
    eyes : ndarray of shape (2, 2), dtype float32
        The eye points the crop was aligned on, ``(x, y)`` in pixels, image-left eye first.
    """

    box: tuple[int, int, int, int]
    landmarks: np.ndarray | None
    crop: np.ndarray
    score: float
    eyes: np.ndarray | None = None


def detect_faces(
    image: np.ndarray, *, detector: str = DEFAULT_DETECTOR, upsample: int | None = None, min_score: float | None = None
) -> list[Detection]:
    """Find faces in an RGB or grey image.

    Parameters
    ----------
    image : ndarray of shape (height, width, 3) or (height, width), dtype uint8
    detector : {'yuface', 'hog', 'mmod'} or a registered name, default='yuface'
        See :mod:`fer_features.detectors`.
    upsample : int, optional
        Doublings of the working resolution (finds smaller faces, slower); the detector's
        default when not given (1 for dlib's, whose smallest face is then about 40x40 pixels;
        0 for ``yuface``, which works on the photo shrunk to 320 pixels).
    min_score : float, optional
        Drop detections scoring lower; defaults to the detector's ``default_min_score``
        (``yuface`` 0.5, ``hog`` 0.3, ``mmod`` 0).

    Returns
    -------
    list of Detection
        Box ``(left, top, right, bottom)`` in pixels, clipped to the image, score and eye
        points (or ``None``), highest score first.

    Raises
    ------
    ValueError
        For an unknown detector (the message lists the valid ones).
    """
    return get_detector(detector).detect(image, upsample=upsample, min_score=min_score)


def landmarks_in_box(grey: np.ndarray, box, predictor=None) -> np.ndarray:
    """68 landmarks of the face in ``box``.

    Parameters
    ----------
    grey : ndarray of shape (height, width), dtype uint8
    box : tuple of 4 int
        ``(left, top, right, bottom)`` in pixels.
    predictor : dlib.shape_predictor, optional
        Defaults to :func:`shape_predictor`.

    Returns
    -------
    landmarks : ndarray of shape (68, 2), dtype float32
        ``(x, y)`` in pixels.
    """
    dlib = import_optional("dlib", "the 68-point landmark predictor")
    predictor = predictor or shape_predictor()
    shape = predictor(grey, dlib.rectangle(*[int(round(v)) for v in box]))
    return np.array([[p.x, p.y] for p in shape.parts()], np.float32)


def eye_centres(landmarks: np.ndarray) -> np.ndarray:
    """Eye centres of 68 iBUG points: the mean of each eye's six points, image-left eye first; ``(2, 2)``."""
    return np.array([landmarks[LEFT_EYE].mean(0), landmarks[RIGHT_EYE].mean(0)], np.float32)


def align_face(grey: np.ndarray, landmarks: np.ndarray, *, size: int = CROP_SIZE) -> np.ndarray:
    """Crop a face so that its eyes land where FER2013's do, and resize to ``size``.

    The eye centres of the 68 landmarks go onto :data:`FER2013_EYES`; see :func:`align_eyes`.

    Parameters
    ----------
    grey : ndarray of shape (height, width), dtype uint8
    landmarks : ndarray of shape (68, 2)
        iBUG 300-W points in pixels of ``grey``.
    size : int, default=48
        Side of the output, in pixels.

    Returns
    -------
    crop : ndarray of shape (size, size), dtype uint8
    """
    return align_eyes(grey, eye_centres(landmarks), size=size)


def align_eyes(grey: np.ndarray, eyes: np.ndarray, *, target=FER2013_EYES, size: int = CROP_SIZE) -> np.ndarray:
    """Crop a face so that two eye points land on ``target``, and resize to ``size``.

    A similarity transform (rotation, uniform scale, translation) maps the eyes onto ``target``
    (pixels of a 48x48 crop, scaled to ``size``). Shrinking is anti-aliased with a Gaussian
    prefilter (as :func:`skimage.transform.rescale` does).

    Parameters
    ----------
    grey : ndarray of shape (height, width), dtype uint8
    eyes : ndarray of shape (2, 2)
        ``(x, y)`` of the image-left and image-right eye, in pixels of ``grey``.
    target : pair of (x, y), default=FER2013_EYES
        Where those points belong in a 48x48 FER2013 crop; each detector's eye points have
        their own (:attr:`fer_features.detectors.FaceDetector.fer2013_eyes`).
    size : int, default=48
        Side of the output, in pixels.

    Returns
    -------
    crop : ndarray of shape (size, size), dtype uint8
    """
    from scipy.ndimage import gaussian_filter
    from skimage.transform import SimilarityTransform, warp

    src = np.asarray(eyes, np.float64)
    dst = np.array(target, np.float64) * (size / CROP_SIZE)
    tform = SimilarityTransform.from_estimate(src, dst) if hasattr(SimilarityTransform, "from_estimate") else None
    if tform is None:
        tform = SimilarityTransform()
        tform.estimate(src, dst)
    sigma = max(0.0, (1.0 / tform.scale - 1.0) / 2.0)  # skimage's anti-aliasing sigma
    # Only the part of the photo the crop samples is filtered and warped (a large photo would
    # otherwise be blurred whole for one face); the margin covers the filter's reach (4 sigma).
    corners = tform.inverse(np.array([[0, 0], [size, 0], [0, size], [size, size]], np.float64))
    pad = 4 * sigma + 2
    h, w = grey.shape[:2]
    x0, y0 = np.maximum(np.floor(corners.min(0) - pad).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(corners.max(0) + pad).astype(int), (w, h))
    if x1 <= x0 or y1 <= y0:  # the crop lies wholly outside the photo
        x0, y0, x1, y1 = 0, 0, w, h
    image = grey[y0:y1, x0:x1].astype(np.float32)
    if sigma > 0:
        image = gaussian_filter(image, sigma)
    offset = np.array([x0, y0], np.float64)
    crop = warp(image, lambda xy: tform.inverse(xy) - offset, output_shape=(size, size), order=1, mode="edge", preserve_range=True)
    return np.clip(crop, 0, 255).round().astype(np.uint8)


def find_faces(
    image: np.ndarray,
    *,
    detector: str = DEFAULT_DETECTOR,
    upsample: int | None = None,
    min_score: float | None = None,
    size: int = CROP_SIZE,
    landmarks: bool | None = None,
) -> list[Face]:
    """Detect and align every face in a photo.

    Parameters
    ----------
    image : ndarray of shape (height, width, 3) or (height, width), dtype uint8
        RGB or grey photo (see :func:`load_image`).
    detector : {'yuface', 'hog', 'mmod'} or a registered name, default='yuface'
        See :mod:`fer_features.detectors`.
    upsample : int, optional
        See :func:`detect_faces`.
    min_score : float, optional
        See :func:`detect_faces`.
    size : int, default=48
        Side of the aligned crops, in pixels.
    landmarks : bool, optional
        Run dlib's 68-point shape predictor in each box, and align on its eye centres.
        Default: only for detectors without eye points (dlib's); a face found by ``yuface`` is
        aligned on the detector's own eye points, placed where that detector puts FER2013's eyes.

    Returns
    -------
    list of Face
        Highest detection score first; empty if no face was found.

    Raises
    ------
    ValueError
        For an unknown detector (the message lists the valid ones).
    """
    det = get_detector(detector)
    rgb = to_rgb(image)
    grey = to_grey(rgb)
    faces = []
    for d in det.detect(rgb, upsample=upsample, min_score=min_score):
        if d.eyes is not None and det.fer2013_eyes is not None and not landmarks:
            points, eyes, target = None, d.eyes, det.fer2013_eyes
        else:
            points = landmarks_in_box(grey, d.box)
            eyes, target = eye_centres(points), FER2013_EYES
        crop = align_eyes(grey, eyes, target=target, size=size)
        faces.append(Face(box=d.box, landmarks=points, crop=crop, score=d.score, eyes=eyes))
    return faces
