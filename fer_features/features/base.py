"""Shared machinery of the image transformers: input validation, batching, parallelism."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import numpy as np
import scipy.sparse as sp
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from fer_features.config import IMAGE_SIZE

# Images per task handed to a joblib worker: large enough to amortise the dispatch.
_CHUNK = 512

#: Smallest batch spread over worker processes. Below it the pool's dispatch (and its start, on
#: the first call) costs more than it saves (BENCHMARKS.md, "Measurements behind defaults in the
#: code"); one photo's faces, or a video's batch of frames, never reach it.
PARALLEL_MIN_IMAGES = 2048

# Called as hook(feature_name, n_done, n_total) after each chunk; set by progress displays.
_progress_hook: Callable[[str, int, int], None] | None = None


@contextlib.contextmanager
def extraction_progress(hook: Callable[[str, int, int], None]) -> Iterator[None]:
    """Report extraction progress to ``hook(feature_name, n_done, n_total)`` inside the block.

    Used by the CLI to draw progress bars; ``hook`` runs in the calling process after each
    chunk of images, whatever ``n_jobs`` is.
    """
    global _progress_hook
    previous, _progress_hook = _progress_hook, hook
    try:
        yield
    finally:
        _progress_hook = previous


def check_images(X, *, estimator: str, min_size: int = 1) -> np.ndarray:
    """Validate a batch of grey face crops.

    Parameters
    ----------
    X : array-like of shape (n_samples, height, width), dtype uint8
    estimator : str
        Name used in error messages.
    min_size : int, default=1
        Smallest height and width accepted, in pixels.

    Returns
    -------
    X : ndarray of shape (n_samples, height, width), dtype uint8, C-contiguous

    Raises
    ------
    ValueError
        If X is not a 3-D uint8 array of images at least ``min_size`` pixels on a side.
    """
    X = np.asarray(X)
    if X.ndim != 3:
        hint = " (a single image? pass X[None])" if X.ndim == 2 else ""
        raise ValueError(
            f"{estimator} expects grey images as an array of shape (n_samples, height, width), "
            f"got shape {X.shape}{hint}"
        )
    if X.dtype != np.uint8:
        raise ValueError(
            f"{estimator} expects uint8 grey levels 0..255, got dtype {X.dtype}; "
            "convert with skimage.util.img_as_ubyte"
        )
    if X.shape[1] < min_size or X.shape[2] < min_size:
        raise ValueError(
            f"{estimator}: images are too small: need at least {min_size}x{min_size} pixels, "
            f"got {X.shape[2]}x{X.shape[1]}"
        )
    return np.ascontiguousarray(X)


def learns_from_data(transformer) -> bool:
    """Whether an extractor's ``fit`` learns from the images (a vocabulary, say).

    Such an extractor must be fitted on Training only, inside the pipeline, and its cached
    output depends on the images it was fitted on. HOG, LBP, landmark geometry and the
    pretrained embeddings are fixed functions: ``fit`` only records the image shape.
    """
    return bool(getattr(transformer, "learns_from_data", False))


class FaceImageTransformer(TransformerMixin, BaseEstimator):
    """Base of the transformers that turn face crops into one feature vector per image.

    Subclasses implement ``_n_features(image_shape)`` and ``_extract(images)``, where
    ``images`` is ``(n, h, w)`` uint8 and the result is ``(n, n_features)`` float32. This class
    validates input, remembers the image shape seen in ``fit`` (feature length depends on it),
    and runs extraction over chunks of images in parallel with ``n_jobs`` joblib workers when the
    batch has at least :data:`PARALLEL_MIN_IMAGES` images (small calls stay in process).
    """

    #: False for extractors that use the cores themselves (torch's threads): never in processes.
    _process_parallel = True

    #: column-name prefix: features are named ``{prefix}0 … {prefix}{n-1}``.
    _feature_prefix = "f"
    #: smallest side accepted, in pixels; subclasses raise it where their geometry needs more.
    _min_size = 1
    #: True where ``fit`` learns from the images (see :func:`learns_from_data`).
    learns_from_data = False

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.input_tags.two_d_array = False
        tags.requires_fit = True
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags

    def _validate(self, X, *, reset: bool) -> np.ndarray:
        name = type(self).__name__
        X = check_images(X, estimator=name, min_size=self._min_size)
        if not reset and tuple(X.shape[1:]) != self.image_shape_:
            h, w = self.image_shape_
            raise ValueError(
                f"{name} was fitted on {w}x{h} images but got {X.shape[2]}x{X.shape[1]}; "
                "resize faces to the size used in fit"
            )
        X = validate_data(self, X, reset=reset, allow_nd=True, dtype=np.uint8, ensure_min_samples=1)
        if reset:
            self.image_shape_ = tuple(X.shape[1:])
        return X

    def fit(self, X, y=None):
        """Check the images and record their shape; these transformers learn nothing else.

        Parameters
        ----------
        X : ndarray of shape (n_samples, height, width), dtype uint8
        y : ignored

        Returns
        -------
        self
        """
        X = self._validate(X, reset=True)
        self._check_params()
        self._n_features_out = self._n_features(self.image_shape_)
        return self

    def transform(self, X):
        """Extract one feature vector per image.

        Parameters
        ----------
        X : ndarray of shape (n_samples, height, width), dtype uint8
            Same height and width as in ``fit``.

        Returns
        -------
        features : ndarray of shape (n_samples, n_features), dtype float32
            Or a CSR sparse matrix of that shape, from an extractor with ``sparse_output``.
        """
        check_is_fitted(self)
        X = self._validate(X, reset=False)
        n_jobs = getattr(self, "n_jobs", None)
        chunks = [X[i : i + _CHUNK] for i in range(0, len(X), _CHUNK)]
        if n_jobs in (None, 1) or not self._process_parallel or len(X) < PARALLEL_MIN_IMAGES:
            results = (self._extract(c) for c in chunks)
        else:
            results = Parallel(n_jobs=n_jobs, return_as="generator")(delayed(self._extract)(c) for c in chunks)
        parts, done = [], 0
        for part in results:
            parts.append(part)
            done += part.shape[0]
            if _progress_hook is not None:
                _progress_hook(self._feature_prefix, done, len(X))
        if parts and sp.issparse(parts[0]):  # an extractor with sparse_output (sift-bovw)
            return sp.vstack(parts, format="csr")
        return np.concatenate(parts)

    def get_feature_names_out(self, input_features=None):
        """Output column names, ``{prefix}0 …`` (e.g. ``hog0``); ndarray of str objects."""
        check_is_fitted(self, "_n_features_out")
        return np.asarray([f"{self._feature_prefix}{i}" for i in range(self._n_features_out)], dtype=object)

    def feature_dims(self, image_shape: tuple[int, int] = (IMAGE_SIZE, IMAGE_SIZE)) -> int:
        """Length of the feature vector for crops of ``image_shape``, from the parameters alone.

        Nothing is fitted and no model is loaded (the CNN embedding reads only its
        checkpoint's configuration), so a pipeline's width is known before it is built.

        Parameters
        ----------
        image_shape : tuple of (int, int), default=(48, 48)
            ``(height, width)`` of the crops.

        Returns
        -------
        int
        """
        return int(self._n_features(tuple(image_shape)))

    def _check_params(self) -> None:
        """Raise ValueError for bad parameters (called in fit)."""

    def _n_features(self, image_shape: tuple[int, int]) -> int:
        raise NotImplementedError

    def _extract(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError
