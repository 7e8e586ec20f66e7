"""Local Binary Pattern (LBP) histograms over a grid of cells."""

from __future__ import annotations

import numpy as np

from fer_features.features.base import FaceImageTransformer

_METHOD_BINS = {
    "uniform": lambda p: p + 2,  # rotation-invariant uniform (riu2)
    "nri_uniform": lambda p: p * (p - 1) + 3,  # uniform, not rotation invariant (u2)
    "default": lambda p: 2**p,
}


class LBPFeatures(FaceImageTransformer):
    """Uniform LBP codes histogrammed per cell of a grid, concatenated.

    Each pixel is coded by comparing it with ``n_points`` neighbours on a circle of ``radius``
    pixels (:func:`skimage.feature.local_binary_pattern`); the face is divided into
    ``grid[0] x grid[1]`` cells and the histogram of codes in each cell, normalised to sum to 1,
    is one block of the descriptor. This is the regional LBP^u2 descriptor of Ojala et al. [1]_
    as used for expressions by Shan et al. [2]_.

    Parameters
    ----------
    n_points : int, default=8
        Number of circularly symmetric neighbours (P).
    radius : float, default=1
        Radius of the circle, in pixels (R).
    method : {'nri_uniform', 'uniform', 'default'}, default='nri_uniform'
        ``'nri_uniform'``: uniform patterns, not rotation invariant, P*(P-1)+3 bins (59 for P=8);
        ``'uniform'``: rotation-invariant uniform patterns, P+2 bins; ``'default'``: all 2**P codes.
    grid : tuple of (int, int), default=(6, 6)
        Cells along (rows, columns); a 48x48 crop gives 8x8-pixel cells.
    n_jobs : int, default=None
        Parallel joblib workers over chunks of images; ``None`` means 1, ``-1`` all cores.

    Attributes
    ----------
    image_shape_ : tuple of (int, int)
        Height and width of the images seen in ``fit``, in pixels.
    n_bins_ : int
        Histogram bins per cell.

    Notes
    -----
    Output is ``(n_samples, grid[0] * grid[1] * n_bins_)`` float32 (2,124 for the defaults),
    cell-major: columns ``c * n_bins_ .. (c + 1) * n_bins_ - 1`` are cell ``c`` in row-major
    order, named ``lbp0 …``. When the image side is not a multiple of the grid, cells differ by at most one pixel.

    References
    ----------
    .. [1] Ojala, T., Pietikäinen, M. and Mäenpää, T. "Multiresolution gray-scale and rotation
           invariant texture classification with local binary patterns." IEEE TPAMI 24(7), 2002.
           :doi:`10.1109/TPAMI.2002.1017623`
    .. [2] Shan, C., Gong, S. and McOwan, P. W. "Facial expression recognition based on Local
           Binary Patterns: A comprehensive study." Image and Vision Computing 27(6), 2009.
           :doi:`10.1016/j.imavis.2008.08.005`

    Examples
    --------
    >>> import numpy as np
    >>> from fer_features.features import LBPFeatures
    >>> LBPFeatures().fit_transform(np.zeros((2, 48, 48), np.uint8)).shape
    (2, 2124)
    """

    _min_size = 3

    _feature_prefix = "lbp"

    def __init__(self, *, n_points=8, radius=1, method="nri_uniform", grid=(6, 6), n_jobs=None):
        self.n_points = n_points
        self.radius = radius
        self.method = method
        self.grid = grid
        self.n_jobs = n_jobs

    def _check_params(self) -> None:
        if self.method not in _METHOD_BINS:
            raise ValueError(f"method must be one of {', '.join(map(repr, _METHOD_BINS))}, got {self.method!r}")
        h, w = self.image_shape_
        rows, cols = self.grid
        if not (1 <= rows <= h and 1 <= cols <= w):
            raise ValueError(f"LBPFeatures: grid {self.grid} does not fit {w}x{h} images")
        self.n_bins_ = _METHOD_BINS[self.method](int(self.n_points))
        # cell index of every pixel, row-major over the grid
        row_cell = np.minimum(np.arange(h) * rows // h, rows - 1)
        col_cell = np.minimum(np.arange(w) * cols // w, cols - 1)
        self._cell_of_pixel = (row_cell[:, None] * cols + col_cell[None, :]).ravel()
        self._cell_sizes = np.bincount(self._cell_of_pixel, minlength=rows * cols).astype(np.float32)

    def _n_features(self, image_shape):
        if self.method not in _METHOD_BINS:
            raise ValueError(f"method must be one of {', '.join(map(repr, _METHOD_BINS))}, got {self.method!r}")
        return int(self.grid[0] * self.grid[1] * _METHOD_BINS[self.method](int(self.n_points)))

    def _extract(self, X):
        from skimage.feature import local_binary_pattern

        n_cells = self.grid[0] * self.grid[1]
        offsets = self._cell_of_pixel * self.n_bins_
        out = np.empty((len(X), n_cells * self.n_bins_), np.float32)
        for i, image in enumerate(X):
            codes = local_binary_pattern(image, self.n_points, self.radius, self.method).astype(np.int64).ravel()
            hist = np.bincount(offsets + codes, minlength=n_cells * self.n_bins_).astype(np.float32)
            out[i] = (hist.reshape(n_cells, self.n_bins_) / self._cell_sizes[:, None]).ravel()
        return out
