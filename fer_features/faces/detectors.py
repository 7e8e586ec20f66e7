"""Face detectors by name: ``yuface`` (libfacedetection's CNN), dlib's ``hog`` and ``mmod``.

Every detector takes an RGB (or grey) photo and returns :class:`Detection` s: a box, a score and,
where the detector gives them, the two eye points, from which :func:`fer_features.faces.alignment.find_faces`
aligns the face without running the 68-point shape predictor. A name → factory registry keeps
"which detectors exist" in one place; an unknown name lists the valid ones.

| name | model | eye points | scores |
| --- | --- | --- | --- |
| ``yuface`` | libfacedetection's YuNet CNN [1]_ (weights compiled into the ``yuface`` wheel) | yes (5 landmarks) | 0..1 |
| ``hog`` | dlib's frontal HOG + linear SVM [2]_ | no | SVM margin, about -1..3 |
| ``mmod`` | dlib's max-margin CNN detector [3]_ (``face-recognition-models``) | no | CNN confidence |

Boxes are ``(left, top, right, bottom)`` in pixels of the photo given, clipped to it.

References
----------
.. [1] Wu, W., Peng, H. and Yu, S. "YuNet: A tiny millisecond-level face detector." Machine
       Intelligence Research 20, 2023. :doi:`10.1007/s11633-023-1423-y`
.. [2] Dalal, N. and Triggs, B. "Histograms of oriented gradients for human detection." CVPR 2005.
       :doi:`10.1109/CVPR.2005.177`
.. [3] King, D. E. "Max-margin object detection." arXiv:1502.00046, 2015.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np

from fer_features.config import DEFAULT_DETECTOR  # the default, chosen by measurement
from fer_features.registry import Registry


@dataclass(frozen=True)
class Detection:
    """One face found by a detector.

    Attributes
    ----------
    box : tuple of 4 int
        ``(left, top, right, bottom)`` in pixels of the photo, clipped to it.
    score : float
        The detector's confidence (higher is surer; scales differ between detectors).
    eyes : ndarray of shape (2, 2), dtype float32, or None
        Eye points ``(x, y)`` in pixels, the image-left eye (the subject's right) first;
        ``None`` for a detector that gives no landmarks.
    """

    box: tuple[int, int, int, int]
    score: float
    eyes: np.ndarray | None = None


class FaceDetector:
    """Base of the detectors: :meth:`detect` turns a photo into :class:`Detection` s.

    Subclasses set the class attributes and implement ``_detect(rgb, upsample)`` returning
    ``(boxes as float (n, 4) ltrb, scores (n,), eyes (n, 2, 2) or None)``.
    """

    #: Registry name.
    name = ""
    #: Detections scoring below this are dropped unless ``min_score`` is given.
    default_min_score = 0.0
    #: ``upsample`` when none is given.
    default_upsample = 1
    #: Where this detector's eye points fall in a 48x48 FER2013 crop, ``((x, y), (x, y))``;
    #: ``None`` for a detector without eye points (faces are then aligned from 68 landmarks).
    fer2013_eyes: tuple[tuple[float, float], tuple[float, float]] | None = None

    def detect(self, image: np.ndarray, *, upsample: int | None = None, min_score: float | None = None) -> list[Detection]:
        """Find the faces of a photo.

        Parameters
        ----------
        image : ndarray of shape (height, width, 3) or (height, width), dtype uint8
            RGB or grey.
        upsample : int, optional
            How much to enlarge the photo before detection, in doublings (finds smaller faces,
            slower); defaults to :attr:`default_upsample`. Its meaning per detector is in the
            detector's docstring.
        min_score : float, optional
            Drop detections scoring lower; defaults to :attr:`default_min_score`.

        Returns
        -------
        list of Detection
            Highest score first.
        """
        if image.ndim == 2:
            image = np.repeat(image[:, :, None], 3, axis=2)
        upsample = self.default_upsample if upsample is None else int(upsample)
        if upsample < 0:
            raise ValueError(f"upsample must be 0 or more doublings, got {upsample}")
        min_score = self.default_min_score if min_score is None else min_score
        h, w = image.shape[:2]
        boxes, scores, eyes = self._detect(np.ascontiguousarray(image[:, :, :3]), upsample)
        found = []
        for i, ((left, top, right, bottom), score) in enumerate(zip(boxes, scores)):
            box = (max(0, int(round(left))), max(0, int(round(top))), min(w, int(round(right))), min(h, int(round(bottom))))
            if box[2] > box[0] and box[3] > box[1] and score >= min_score:
                found.append(Detection(box, float(score), None if eyes is None else eyes[i].astype(np.float32)))
        return sorted(found, key=lambda d: -d.score)

    def _detect(self, rgb: np.ndarray, upsample: int):
        raise NotImplementedError


class YuFaceDetector(FaceDetector):
    """libfacedetection's YuNet [1]_ through the ``yuface`` package: boxes, scores, 5 landmarks.

    The network's weights are compiled into the wheel (nothing is downloaded). The photo is
    shrunk (area averaging) so that its longer side is at most ``base_side * 2**upsample``
    pixels (320 at the default ``upsample=0``) and never enlarged: the network's cost grows with
    the pixels (about 4x from 320 to 640 px) while a face a tenth of the photo wide is still
    found at 320. Each ``upsample`` doubles that working size, finding faces half as small.
    Scores are the network's confidence in 0..1.
    """

    name = "yuface"
    default_min_score = 0.5
    default_upsample = 0
    base_side = 320
    #: Medians over the 2,935 of 3,000 sampled Training crops (each upscaled 4x on a 384-pixel
    #: canvas) where it found one face; interquartile range about 3 px. Its eye points lie
    #: about 1 px left of and above dlib's eye centres on the image-left eye (dlib's 68 points in
    #: the same boxes: (15.1, 18.7), (32.6, 18.5), as ``FER2013_EYES``). Measured by
    #: ``python benchmarks/calibrate_alignment.py --n 3000 --detector yuface``.
    fer2013_eyes = ((14.1, 17.7), (32.4, 18.0))

    def __init__(self):
        import yuface  # noqa: F401  (fail early, with the package's name)
        from threadpoolctl import ThreadpoolController

        # The wheel's own OpenMP runtime (yuface.libs/libgomp-*), limited per call: a second thread
        # only while a second core is idle (fer_features.threads.idle_cores); BENCHMARKS.md,
        # "Busy machine".
        controller = ThreadpoolController()
        own = [lib.filepath for lib in controller.lib_controllers if "yuface" in lib.filepath]
        self._omp = controller.select(filepath=own) if own else None
        self._facedetect_cnn = _facedetect_cnn()

    #: The most OpenMP threads a call uses: the 320-pixel working copy has too few rows to share
    #: among more (BENCHMARKS.md, "Busy machine").
    max_threads = 2

    def _threads(self) -> int:
        """OpenMP threads for this call (:func:`fer_features.threads.detector_threads`), at most :attr:`max_threads`."""
        from fer_features.threads import detector_threads

        return detector_threads(self.max_threads)

    def _detect(self, rgb: np.ndarray, upsample: int):
        from yuface import c_detect

        h, w = rgb.shape[:2]
        scale = min(1.0, self.base_side * 2**upsample / max(h, w))
        work = rgb if scale == 1.0 else _resize(rgb, max(1, round(w * scale)), max(1, round(h * scale)))
        # c_detect wants BGR; columns: confidence (0-100), x, y, w, h, then 5 (x, y) points:
        # image-left eye, image-right eye, nose tip, mouth corners (a 16th column is unused).
        bgr = np.ascontiguousarray(work[:, :, ::-1])
        with self._omp.limit(limits=self._threads()) if self._omp is not None else nullcontext():
            out = (c_detect(bgr) if self._facedetect_cnn is None else _detect_into_buffer(self._facedetect_cnn, bgr)).astype(np.float32)
        if len(out) == 0:
            return np.zeros((0, 4)), np.zeros(0), np.zeros((0, 2, 2))
        # pixel centres: a point at p in the work image lies at (p + 0.5) / scale - 0.5 in the photo
        xy = lambda v: (v + 0.5) / scale - 0.5  # noqa: E731
        x, y, bw, bh = out[:, 1], out[:, 2], out[:, 3], out[:, 4]
        boxes = np.stack([x / scale, y / scale, (x + bw) / scale, (y + bh) / scale], axis=1)
        eyes = xy(out[:, 5:9]).reshape(-1, 2, 2)
        return boxes, out[:, 0] / 100.0, eyes


#: Bytes of libfacedetection's result buffer (its ``DETECT_BUFFER_SIZE``, as yuface allocates it).
_RESULT_BUFFER_BYTES = 0x9000


def _facedetect_cnn():
    """libfacedetection's ``facedetect_cnn`` in the yuface wheel, through ctypes; None if not found.

    yuface's ``c_detect`` mallocs a 36 KiB result buffer on every call and never frees it
    (``src/main.cpp`` of ShiqiYu/libfacedetection.pip): memory grows with every photo or video
    frame (BENCHMARKS.md, "Memory on long runs"). Called directly, the buffer is a numpy array
    freed with the call. The results are
    ``c_detect``'s: the same first 15 columns (its 16th is uninitialised memory; here 0).
    """
    import ctypes
    from pathlib import Path

    import yuface

    try:
        lib = ctypes.CDLL(str(Path(yuface.__file__).parent / "libfacedetection.so"))
        fn = lib._Z14facedetect_cnnPhS_iii  # int* facedetect_cnn(uchar* result, uchar* bgr, int w, int h, int step)
    except (OSError, AttributeError):
        return None
    fn.restype = ctypes.POINTER(ctypes.c_int)
    fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int]
    return fn


def _detect_into_buffer(facedetect_cnn, bgr: np.ndarray) -> np.ndarray:
    """``c_detect(bgr)`` without its leak: ndarray of shape (n_faces, 16), dtype int16."""
    h, w = bgr.shape[:2]
    buffer = np.zeros(_RESULT_BUFFER_BYTES, np.uint8)
    facedetect_cnn(buffer.ctypes.data, bgr.ctypes.data, w, h, w * 3)
    n = int(buffer[:4].view(np.int32)[0])  # the face count, then 16 int16 per face
    return buffer[4 : 4 + 32 * n].view(np.int16).reshape(n, 16).copy()


class DlibHOGDetector(FaceDetector):
    """dlib's frontal HOG detector [2]_; ``upsample`` doublings as in dlib (its smallest face is
    about 80x80 pixels at 0). Scores are the SVM's margin; at the default 0.3 the round mission
    patch in ``skimage.data.astronaut()`` (0.12-0.15) is no face, while her face scores 1.16."""

    name = "hog"
    default_min_score = 0.3

    def __init__(self):
        from fer_features.faces.dlib_models import face_detector

        self._det = face_detector("hog")

    def _detect(self, rgb: np.ndarray, upsample: int):
        rects, scores, _ = self._det.run(rgb, upsample, 0.0)
        return [(r.left(), r.top(), r.right(), r.bottom()) for r in rects], list(scores), None


class DlibMMODDetector(FaceDetector):
    """dlib's MMOD CNN detector [3]_: more robust to pose than HOG, about 10x slower on a CPU."""

    name = "mmod"

    def __init__(self):
        from fer_features.faces.dlib_models import face_detector

        self._det = face_detector("mmod")

    def _detect(self, rgb: np.ndarray, upsample: int):
        found = self._det(rgb, upsample)
        boxes = [(d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom()) for d in found]
        return boxes, [d.confidence for d in found], None


def _resize(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """Shrink an RGB image with area averaging (OpenCV when installed, else Pillow's box filter)."""
    try:
        import cv2
    except ImportError:  # pragma: no cover - OpenCV is in the lock
        from PIL import Image

        return np.asarray(Image.fromarray(rgb).resize((width, height), Image.BOX))
    return cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)


#: Tag of the detectors that are dlib's: no eye points, so the 68-point predictor aligns their faces.
DLIB_TAG = "dlib"

#: The face detectors by name: factory ``() -> FaceDetector``, description and tags.
DETECTORS = Registry("face detector")
DETECTORS.register("yuface", YuFaceDetector, "libfacedetection's YuNet CNN (yuface): boxes and 5 landmarks, fast")
DETECTORS.register("hog", DlibHOGDetector, "dlib's frontal HOG + linear SVM detector", tags=(DLIB_TAG,))
DETECTORS.register("mmod", DlibMMODDetector, "dlib's MMOD CNN detector: robust to pose, slow on a CPU", tags=(DLIB_TAG,))


def list_detectors() -> dict[str, str]:
    """Registered detector names and their one-line descriptions."""
    return DETECTORS.describe()


def register_detector(name: str, factory: Callable[[], FaceDetector], description: str, *, tags: tuple[str, ...] = ()) -> None:
    """Make a face detector available by name (``fer predict --detector NAME``); tag a dlib one :data:`DLIB_TAG`."""
    DETECTORS.register(name, factory, description, tags=tags)
    get_detector.cache_clear()


@functools.lru_cache(maxsize=8)
def get_detector(name: str = DEFAULT_DETECTOR) -> FaceDetector:
    """The detector of that name, built once per process.

    Raises
    ------
    ValueError
        If the name is unknown; the message lists the valid ones.
    """
    return DETECTORS.factory(name)()
