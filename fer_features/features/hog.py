"""Histogram of Oriented Gradients (HOG) of face crops."""

from __future__ import annotations

import numpy as np

from fer_features.features.base import FaceImageTransformer


class HOGFeatures(FaceImageTransformer):
    """HOG descriptor of each face crop, by :func:`skimage.feature.hog`.

    Gradients are binned by orientation in cells of ``pixels_per_cell`` pixels; histograms are
    contrast-normalised over overlapping blocks of ``cells_per_block`` cells and concatenated
    (Dalal & Triggs [1]_). The default 6x6-pixel cells divide a 48x48 FER2013 crop into an
    8x8 grid, fine enough to resolve eyes, brows and mouth corners.

    Parameters
    ----------
    orientations : int, default=9
        Number of unsigned orientation bins over 0..180 degrees.
    pixels_per_cell : tuple of (int, int), default=(6, 6)
        Cell size (rows, columns), in pixels.
    cells_per_block : tuple of (int, int), default=(2, 2)
        Block size (rows, columns), in cells.
    block_norm : {'L1', 'L1-sqrt', 'L2', 'L2-Hys'}, default='L2-Hys'
        Block normalisation, as in :func:`skimage.feature.hog`.
    transform_sqrt : bool, default=False
        Apply power-law (square-root) compression to the image before computing gradients.
    n_jobs : int, default=None
        Parallel joblib workers over chunks of images; ``None`` means 1, ``-1`` all cores.

    Attributes
    ----------
    image_shape_ : tuple of (int, int)
        Height and width of the images seen in ``fit``, in pixels.
    n_features_in_ : int
        Set by scikit-learn's validation to the image height (the second axis of X).

    Notes
    -----
    Input is ``(n_samples, height, width)`` uint8; output ``(n_samples, n_features)`` float32
    with ``n_features = orientations * cells_per_block[0] * cells_per_block[1] * n_blocks_row *
    n_blocks_col``, where ``n_blocks_row = height // pixels_per_cell[0] - cells_per_block[0] + 1``
    (1,764 for the defaults on 48x48 crops). Columns are named ``hog0 …``.

    References
    ----------
    .. [1] Dalal, N. and Triggs, B. "Histograms of oriented gradients for human detection."
           CVPR 2005. :doi:`10.1109/CVPR.2005.177`

    Examples
    --------
    >>> import numpy as np
    >>> from fer_features.features import HOGFeatures
    >>> faces = np.zeros((2, 48, 48), dtype=np.uint8)
    >>> HOGFeatures().fit_transform(faces).shape
    (2, 1764)
    """

    _feature_prefix = "hog"

    def __init__(
        self,
        *,
        orientations=9,
        pixels_per_cell=(6, 6),
        cells_per_block=(2, 2),
        block_norm="L2-Hys",
        transform_sqrt=False,
        n_jobs=None,
    ):
        self.orientations = orientations
        self.pixels_per_cell = pixels_per_cell
        self.cells_per_block = cells_per_block
        self.block_norm = block_norm
        self.transform_sqrt = transform_sqrt
        self.n_jobs = n_jobs

    def _check_params(self) -> None:
        if self.block_norm not in ("L1", "L1-sqrt", "L2", "L2-Hys"):
            raise ValueError(f"block_norm must be one of 'L1', 'L1-sqrt', 'L2', 'L2-Hys', got {self.block_norm!r}")
        h, w = self.image_shape_
        need_h = self.pixels_per_cell[0] * self.cells_per_block[0]
        need_w = self.pixels_per_cell[1] * self.cells_per_block[1]
        if h < need_h or w < need_w:
            raise ValueError(
                f"HOGFeatures: images are too small: need at least {need_w}x{need_h} pixels for "
                f"{self.pixels_per_cell[1]}x{self.pixels_per_cell[0]} cells in "
                f"{self.cells_per_block[1]}x{self.cells_per_block[0]} blocks, got {w}x{h}"
            )

    def _hog(self, image: np.ndarray) -> np.ndarray:
        from skimage.feature import hog

        return hog(
            image,
            orientations=self.orientations,
            pixels_per_cell=tuple(self.pixels_per_cell),
            cells_per_block=tuple(self.cells_per_block),
            block_norm=self.block_norm,
            transform_sqrt=self.transform_sqrt,
            feature_vector=True,
        )

    def _n_features(self, image_shape):
        return self._hog(np.zeros(image_shape, np.uint8)).size

    def _extract(self, X):
        out = np.empty((len(X), self._n_features_out), np.float32)
        for i, image in enumerate(X):
            out[i] = self._hog(image)
        return out
