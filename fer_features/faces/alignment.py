"""Faces in photos: reading images, detection, 68-point landmarks, alignment to FER2013 crops.

The flow is the field's: image → face detection (box, and eye points where the detector gives
them) → similarity alignment on the eye centres → 48x48 grey crop framed like a FER2013 face.
Detectors are registered by name in :mod:`fer_features.faces.detectors` (``yuface``, dlib's ``hog``
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

import os
from dataclasses import dataclass

import numpy as np

from fer_features.config import DEFAULT_DETECTOR
from fer_features.config import IMAGE_SIZE as CROP_SIZE  # side of the aligned crop (FER2013's)
from fer_features.extras import import_optional
from fer_features.faces.detectors import Detection, get_detector
from fer_features.faces.dlib_models import shape_predictor
from fer_features.faces.images import ImageError, decode_image, to_grey, to_rgb

#: Where the eye centres (mean of the six landmarks of each eye) fall in a 48x48 FER2013 crop,
#: in pixels ``(x, y)``: the image-left eye (the subject's right eye) first. Medians over the
#: 2,037 of 3,000 sampled Training crops where dlib found exactly one face (interquartile range
#: about 2.5 px), measured by ``python benchmarks/calibrate_alignment.py --n 3000``.
FER2013_EYES = ((15.1, 19.0), (32.8, 18.8))


# 68-point iBUG indices of the two eyes (image-left first).
LEFT_EYE = slice(36, 42)


RIGHT_EYE = slice(42, 48)


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
    score : float or None
        Detector confidence (higher is surer; the scale is the detector's); None for an image
        taken whole as a face crop (a 48x48 one, :func:`faces_in`; :func:`whole_image_face`).
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
        See :mod:`fer_features.faces.detectors`.
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
        their own (:attr:`fer_features.faces.detectors.FaceDetector.fer2013_eyes`).
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
        RGB or grey photo (see :func:`~fer_features.faces.images.decode_image`).
    detector : {'yuface', 'hog', 'mmod'} or a registered name, default='yuface'
        See :mod:`fer_features.faces.detectors`.
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


def is_face_crop(image: np.ndarray) -> bool:
    """True for a 48x48 image, which is taken as an aligned FER2013-style crop, not a photo."""
    return image.shape[:2] == (CROP_SIZE, CROP_SIZE)


#: Largest side, in pixels, of an image taken whole as a face crop when the detector finds no
#: face in it (:func:`whole_image_face`). Aligned face crops of other data sets (100x100, for
#: example) are often too tight for the detector: on FER2013's 3,589 PublicTest crops upscaled
#: to 64, 100 and 192 pixels with no margin, yuface missed 7.0%, 4.1% and 1.2% of the faces
#: (BENCHMARKS.md, section "Face crops given as photos"). Larger images are left to the
#: detector: a scene's thumbnail without a face must not be given an emotion.
WHOLE_FACE_MAX_SIDE = 160

#: Largest ratio of the long side to the short side of such an image (5:4). A face crop is
#: about square; a thumbnail of a scene is usually 4:3 or wider.
WHOLE_FACE_MAX_ASPECT = 1.25

#: Smallest side, in pixels, of such an image: an icon is no face crop.
WHOLE_FACE_MIN_SIDE = 32

#: Least standard deviation of such an image's grey levels (0-255): a flat image is no face.
WHOLE_FACE_MIN_STD = 2.0


def whole_image_face(image: np.ndarray) -> Face | None:
    """The whole image as one face crop, if it is small and nearly square; else None.

    :func:`faces_in` calls it for an image in which the detector found no face. An image of
    :data:`WHOLE_FACE_MIN_SIDE` to :data:`WHOLE_FACE_MAX_SIDE` pixels a side, its sides within
    :data:`WHOLE_FACE_MAX_ASPECT` of each other, is taken for an aligned face crop, unless it
    is flat (grey standard deviation under :data:`WHOLE_FACE_MIN_STD`). Its central square is
    made grey and resized to 48x48 with anti-aliasing (:func:`skimage.transform.resize`); it
    is not re-aligned.

    Parameters
    ----------
    image : ndarray of shape (height, width) or (height, width, 3 or 4)
        Grey, RGB or RGBA, of any dtype :func:`~fer_features.faces.images.to_rgb` takes.

    Returns
    -------
    Face or None
        ``crop`` of shape (48, 48), dtype uint8; ``box`` the central square
        ``(left, top, left + side, top + side)`` in pixels of the image; no landmarks, eyes or
        score. None for a smaller, larger, more oblong or flat image.

    Raises
    ------
    ImageError
        If ``image`` is not an image array :func:`~fer_features.faces.images.to_rgb` takes.
    """
    from skimage.transform import resize

    h, w = image.shape[:2]
    side = min(h, w)
    if side < WHOLE_FACE_MIN_SIDE or max(h, w) > WHOLE_FACE_MAX_SIDE or max(h, w) > WHOLE_FACE_MAX_ASPECT * side:
        return None
    top, left = (h - side) // 2, (w - side) // 2
    grey = to_grey(to_rgb(image))[top : top + side, left : left + side]
    if grey.std() < WHOLE_FACE_MIN_STD:  # a blank or one-colour image is no face
        return None
    crop = resize(grey.astype(np.float32), (CROP_SIZE, CROP_SIZE), anti_aliasing=side > CROP_SIZE, preserve_range=True)
    box = (int(left), int(top), int(left + side), int(top + side))
    return Face(box=box, landmarks=None, crop=np.clip(crop.round(), 0, 255).astype(np.uint8), score=None)


def faces_in(
    source,
    *,
    detector: str = DEFAULT_DETECTOR,
    upsample: int | None = None,
    min_score: float | None = None,
    max_pixels: int | None = None,
    whole_if_none: bool = True,
) -> tuple[np.ndarray, list[Face]]:
    """Read a photo and find its faces, in one call: :func:`~fer_features.faces.images.decode_image`, then :func:`find_faces`.

    A 48x48 image is taken as an aligned face crop (:func:`is_face_crop`), as FER2013's are: its
    one face is the whole image, found without detection (box ``(0, 0, 48, 48)``, score None).
    A small, nearly square image in which the detector finds no face (at most
    :data:`WHOLE_FACE_MAX_SIDE` pixels a side) is taken as a face crop too, resized whole
    (:func:`whole_image_face`), unless ``min_score`` is given (only detections then) or
    ``whole_if_none`` is False.

    Parameters
    ----------
    source : path-like, bytes or ndarray
        An image file or its bytes (decoded under ``max_pixels``), or an image array of shape
        ``(height, width)``, ``(height, width, 1, 3 or 4)``, of any dtype
        :func:`~fer_features.faces.images.to_rgb` takes.
    detector, upsample, min_score
        See :func:`find_faces`.
    max_pixels : int, optional
        See :func:`~fer_features.faces.images.decode_image`.
    whole_if_none : bool, default=True
        Take a small, nearly square image in which no face is found as a face crop
        (:func:`whole_image_face`). Ignored when ``min_score`` is given: a caller who asks for
        detections above a score gets detections only.

    Returns
    -------
    image : ndarray of shape (height, width, 3), dtype uint8, or (48, 48)
        The photo as RGB; a 48x48 grey uint8 crop as it was given.
    faces : list of Face
        Highest detection score first; empty if no face was found (and the image is not taken whole).

    Raises
    ------
    ImageError
        If the image cannot be read (a missing file too, with that message). Errors of the
        detection itself (a bad ``upsample``) are not an unreadable image and pass as they are.
    """
    try:
        if isinstance(source, (str, os.PathLike, bytes)):
            image = decode_image(source, max_pixels=max_pixels)
        else:
            image = np.asarray(source)
            if image.ndim == 3 and image.shape[2] == 1:
                image = image[:, :, 0]
            if not (image.ndim == 2 and is_face_crop(image) and image.dtype == np.uint8):
                image = to_rgb(image)
    except ImageError:
        raise
    except (OSError, ValueError) as exc:
        raise ImageError(str(exc)) from exc
    if is_face_crop(image):
        whole = (0, 0, CROP_SIZE, CROP_SIZE)
        return image, [Face(box=whole, landmarks=None, crop=to_grey(image), score=None)]
    faces = find_faces(image, detector=detector, upsample=upsample, min_score=min_score)
    if not faces and whole_if_none and min_score is None and (whole := whole_image_face(image)) is not None:
        faces = [whole]
    return image, faces
