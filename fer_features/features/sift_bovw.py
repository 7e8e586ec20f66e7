"""Dense SIFT bag of visual words with spatial-pyramid histograms (the ``sift-bovw`` feature)."""

from __future__ import annotations

import numpy as np

from fer_features.features.base import FaceImageTransformer, check_images

#: Orientation bins of a SIFT descriptor, and spatial bins along each side (Lowe 2004).
N_ORIENTATIONS = 8
N_SPATIAL = 4
DESCRIPTOR_SIZE = N_SPATIAL * N_SPATIAL * N_ORIENTATIONS  # 128

# Descriptors whose gradient energy is below this (per pixel of their window, on grey levels
# scaled to 0..1) are flat patches; they are set to zero instead of normalised noise
# (VLFeat's ``vl_phow`` uses a contrast threshold the same way).
_CONTRAST_THRESHOLD = 0.005
_ENCODINGS = ("counts", "presence")
_NORMS = ("l1", "l2")


def _triangle(half_width: int) -> np.ndarray:
    t = np.arange(-half_width + 1, half_width, dtype=np.float32)
    return 1.0 - np.abs(t) / half_width


def dense_sift(images: np.ndarray, *, bin_size: int = 4, step: int = 2, smooth: bool = True, root: bool = False):
    """SIFT descriptors of every image on a regular grid, at one scale, vectorised.

    The descriptor is Lowe's [1]_: gradient orientations in 8 bins, pooled over 4x4 spatial bins
    of ``bin_size`` pixels with bilinear weights, weighted by a Gaussian over the window
    (sigma half the window width), L2-normalised, clipped at 0.2 and normalised again. It is
    computed densely, upright (no dominant orientation), as VLFeat's ``vl_dsift`` does [2]_:
    orientation maps are convolved with a triangular kernel once per image and sampled at
    every bin centre, instead of one window per keypoint.

    Parameters
    ----------
    images : ndarray of shape (n_samples, height, width), dtype uint8
    bin_size : int, default=4
        Width of a spatial bin, in pixels; a descriptor covers ``4 * bin_size`` pixels.
    step : int, default=2
        Distance between neighbouring descriptor centres, in pixels.
    smooth : bool, default=True
        Gaussian-smooth the image with sigma ``bin_size / 6`` first (VLFeat's ``vl_phow``
        magnification factor 6), so that larger bins see coarser gradients.
    root : bool, default=False
        RootSIFT [3]_: L1-normalise and take the square root, so that the Euclidean distance
        of k-means compares descriptors by the Hellinger kernel.

    Returns
    -------
    descriptors : ndarray of shape (n_samples, n_positions, 128), dtype float32
        Per descriptor the layout is OpenCV's: spatial row, spatial column, orientation.
    centres : ndarray of shape (n_positions, 2), dtype float32
        (row, column) of each descriptor's centre, in pixels.

    Raises
    ------
    ValueError
        If the images are smaller than one descriptor (``4 * bin_size + 1`` pixels).

    References
    ----------
    .. [1] Lowe, D. G. "Distinctive image features from scale-invariant keypoints." IJCV 60(2),
           2004. :doi:`10.1023/B:VISI.0000029664.99615.94`
    .. [2] Vedaldi, A. and Fulkerson, B. "VLFeat: An open and portable library of computer
           vision algorithms." ACM Multimedia 2010. :doi:`10.1145/1873951.1874249`
    .. [3] Arandjelović, R. and Zisserman, A. "Three things everyone should know to improve
           object retrieval." CVPR 2012. :doi:`10.1109/CVPR.2012.6248018`
    """
    from scipy.ndimage import correlate1d, gaussian_filter

    X = check_images(images, estimator="dense_sift", min_size=4 * bin_size + 1)
    n, h, w = X.shape
    img = X.astype(np.float32) / 255.0
    if smooth:
        img = gaussian_filter(img, sigma=(0, bin_size / 6.0, bin_size / 6.0), mode="nearest")
    gy, gx = np.gradient(img, axis=(1, 2))
    mag = np.hypot(gx, gy)
    # angle measured like OpenCV's SIFT: image x to the right, y downwards, bins counter-clockwise
    theta = np.mod(np.arctan2(-gy, gx), 2 * np.pi) * (N_ORIENTATIONS / (2 * np.pi))
    lower = np.floor(theta)
    frac = theta - lower
    lower = lower.astype(np.int64) % N_ORIENTATIONS
    upper = (lower + 1) % N_ORIENTATIONS
    low_w, up_w = mag * (1 - frac), mag * frac
    maps = np.empty((n, N_ORIENTATIONS, h, w), np.float32)
    for o in range(N_ORIENTATIONS):  # linear interpolation between the two nearest bins
        maps[:, o] = np.where(lower == o, low_w, 0.0) + np.where(upper == o, up_w, 0.0)
    kernel = _triangle(bin_size)
    maps = correlate1d(maps, kernel, axis=2, mode="constant")
    maps = correlate1d(maps, kernel, axis=3, mode="constant")

    # bin centres of a descriptor, relative to its centre: (i - 1.5) * bin_size
    offsets = (np.arange(N_SPATIAL) - (N_SPATIAL - 1) / 2) * bin_size
    half = 2 * bin_size
    ys = np.arange(half, h - half + 1e-9, step)
    xs = np.arange(half, w - half + 1e-9, step)
    cy, cx = np.meshgrid(ys, xs, indexing="ij")
    centres = np.stack([cy.ravel(), cx.ravel()], axis=1).astype(np.float32)
    # sample positions, rounded to the pixel grid (they are exact when bin_size is even)
    rows = np.clip(np.rint(centres[:, 0, None] + offsets[None, :] - 0.5).astype(np.int64), 0, h - 1)
    cols = np.clip(np.rint(centres[:, 1, None] + offsets[None, :] - 0.5).astype(np.int64), 0, w - 1)
    # (n, 8, p, 4, 4) -> (n, p, 4, 4, 8)
    desc = maps[:, :, rows[:, :, None], cols[:, None, :]].transpose(0, 2, 3, 4, 1)
    gauss = np.exp(-(offsets**2) / (2 * (half) ** 2)).astype(np.float32)
    desc = desc * (gauss[:, None] * gauss[None, :])[None, None, :, :, None]
    desc = desc.reshape(n, len(centres), DESCRIPTOR_SIZE)

    energy = desc.sum(axis=2) / (16 * bin_size * bin_size)
    norm = np.linalg.norm(desc, axis=2, keepdims=True)
    desc = desc / np.maximum(norm, 1e-12)
    np.minimum(desc, 0.2, out=desc)
    desc /= np.maximum(np.linalg.norm(desc, axis=2, keepdims=True), 1e-12)
    desc[energy < _CONTRAST_THRESHOLD] = 0.0
    if root:
        desc = np.sqrt(desc / np.maximum(desc.sum(axis=2, keepdims=True), 1e-12))
    return desc.astype(np.float32, copy=False), centres


class _DenseSIFTEncoder(FaceImageTransformer):
    """Shared geometry of the dense-SIFT encoders (:class:`SIFTBoVW` and
    :class:`~fer_features.features.sift_fisher.SIFTFisherVector`): descriptors at every scale of
    ``bin_sizes`` every ``step`` pixels, the spatial-pyramid cell of each, and a uniform sample
    of the training images' descriptors to learn the encoder from."""

    @property
    def _min_size(self) -> int:  # one descriptor of the largest scale must fit
        try:
            return 4 * max(int(b) for b in self.bin_sizes) + 1
        except (TypeError, ValueError):
            return 1

    def _check_geometry(self) -> None:
        if not self.bin_sizes or any(int(b) < 1 for b in self.bin_sizes):
            raise ValueError(f"bin_sizes must be positive pixel widths, e.g. (4, 6, 8); got {self.bin_sizes!r}")
        if int(self.step) < 1:
            raise ValueError(f"step must be at least 1 pixel, got {self.step!r}")
        if not self.pyramid or any(int(g) < 1 for g in self.pyramid):
            raise ValueError(f"pyramid must list cells per side at each level, e.g. (1, 2, 4); got {self.pyramid!r}")
        h, w = self.image_shape_
        if max(self.pyramid) > min(h, w):
            raise ValueError(
                f"{type(self).__name__}: a {max(self.pyramid)}x{max(self.pyramid)} pyramid level does not fit {w}x{h} images"
            )

    def _descriptors(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """All scales' descriptors ``(n, p, 128)`` and their centres ``(p, 2)``."""
        parts = [dense_sift(X, bin_size=int(b), step=int(self.step), root=bool(self.root)) for b in self.bin_sizes]
        return np.concatenate([d for d, _ in parts], axis=1), np.concatenate([c for _, c in parts])

    def _cells(self, centres: np.ndarray) -> np.ndarray:
        """Column offset of each descriptor's cell at each level: ``(levels, p)``, in cells."""
        h, w = self.image_shape_
        out, start = [], 0
        for g in self.pyramid:
            g = int(g)
            r = np.minimum((centres[:, 0] * g / h).astype(np.int64), g - 1)
            c = np.minimum((centres[:, 1] * g / w).astype(np.int64), g - 1)
            out.append(start + r * g + c)
            start += g * g
        return np.stack(out)

    def _extract(self, X):
        """``_encode`` the faces, or with ``mirror`` the mean of the faces' and their mirror images' codes."""
        if not self.mirror:
            return self._encode(X)
        both = self._encode(np.concatenate([X, X[:, :, ::-1]]))
        return (both[: len(X)] + both[len(X) :]) * np.float32(0.5)

    def _sample_descriptors(self, X: np.ndarray) -> tuple[np.ndarray, int]:
        """At most ``n_train_descriptors`` descriptors ``(m, 128)`` drawn evenly from the images, and descriptors per image."""
        rng = np.random.default_rng(self.random_state)
        n_pos = self._descriptors(X[:1])[0].shape[1]
        per_image = max(1, min(n_pos, -(-int(self.n_train_descriptors) // len(X))))
        sample = []
        for start in range(0, len(X), 512):
            desc = self._descriptors(X[start : start + 512])[0]
            picks = np.stack([rng.choice(n_pos, per_image, replace=False) for _ in range(len(desc))])
            sample.append(np.take_along_axis(desc, picks[:, :, None], axis=1).reshape(-1, DESCRIPTOR_SIZE))
        sample = np.concatenate(sample)
        if len(sample) > self.n_train_descriptors:
            sample = sample[rng.choice(len(sample), int(self.n_train_descriptors), replace=False)]
        return sample, n_pos


class SIFTBoVW(_DenseSIFTEncoder):
    """Dense SIFT bag of visual words, histogrammed over a spatial pyramid.

    Dense SIFT descriptors (:func:`dense_sift`) are taken on a grid every ``step`` pixels at each
    bin size of ``bin_sizes``; ``fit`` learns a vocabulary of ``n_words`` visual words by
    mini-batch k-means [3]_ on descriptors sampled from the training images. ``transform``
    assigns every descriptor to its nearest word and counts the words in each cell of a spatial
    pyramid (Lazebnik et al. [1]_): the whole face, then 2x2, 4x4 … cells. This is the
    representation of Ionescu et al. [2]_ for FER2013.

    Parameters
    ----------
    n_words : int, default=512
        Vocabulary size (k of k-means).
    bin_sizes : tuple of int, default=(4, 6, 8)
        Spatial bin widths, one descriptor scale each, in pixels; a descriptor covers
        ``4 * bin_size`` pixels (16, 24, 32 pixels of a 48x48 crop).
    step : int, default=2
        Grid step of the descriptor centres, in pixels.
    pyramid : tuple of int, default=(1, 2, 4)
        Cells along each side at each pyramid level.
    encoding : {'counts', 'presence'}, default='counts'
        ``'counts'``: how many descriptors of each word fall in the cell (Lazebnik);
        ``'presence'``: 1 if the word occurs in the cell at all (Ionescu et al.'s presence
        vectors).
    norm : {'l1', 'l2'}, default='l1'
        ``'l1'``: each level divided by its total and weighted by Lazebnik's level weights, so
        the vector is one L1-normalised histogram (for the χ² and intersection kernels, and the
        pyramid match kernel); ``'l2'``: each level L2-normalised on its own, levels weighted
        equally, so the dot product of two faces is a sum of per-level cosine similarities
        (the linear kernel Ionescu et al. use on presence vectors).
    sparse_output : bool, default=False
        Return a :class:`scipy.sparse.csr_matrix`. A face uses a few hundred words of each
        level, so with thousands of words the dense matrix is mostly zeros: 4,096 words over a
        (1, 2, 3, 4) pyramid are 122,880 columns, 480 KiB a face dense, 8 KiB sparse (the benchmark cache: 296 MB for FER2013).
    root : bool, default=True
        Use RootSIFT descriptors (see :func:`dense_sift`).
    mirror : bool, default=False
        Describe each face by the mean of its pyramid histograms and those of its mirror image
        (flipped left to right), so the vector ignores which side of the face a word is on.
        Costs twice the descriptors in ``transform``; the vocabulary is learned as without it.
        With ``norm='l2'`` a level of the mean has norm at most 1 (1 for a symmetric face);
        with ``norm='l1'`` it still sums to its level weight.
    n_train_descriptors : int, default=200000
        Descriptors sampled (uniformly, from all training images) to learn the vocabulary.
    random_state : int, default=0
        Seed of the descriptor sample and of k-means.
    n_jobs : int, default=None
        Parallel joblib workers over chunks of images in ``transform``; ``None`` means 1.

    Attributes
    ----------
    image_shape_ : tuple of (int, int)
        Height and width of the images seen in ``fit``, in pixels.
    vocabulary_ : ndarray of shape (n_words, 128), dtype float32
        The visual words (k-means centroids).
    n_descriptors_ : int
        Descriptors per image (all scales).
    kmeans_inertia_ : float
        Mean squared distance of the sampled descriptors to their word.

    Notes
    -----
    Output is ``(n_samples, n_words * sum(g * g for g in pyramid))`` float32 (10,752 for the
    defaults), level-major then cell-major (row-major) then word: columns are named
    ``sift_bovw0 …``; a CSR matrix with ``sparse_output``. With ``norm='l1'`` each level's
    histogram is divided by its total (the number of
    descriptors, or of present words, over its cells), so a level sums to 1, and weighted by
    Lazebnik's level weights ``1 / 2 ** (L - l)`` for level ``l`` of ``0..L`` (level 0:
    ``1 / 2 ** L``), renormalised to sum to 1: with these weights the histogram intersection
    of two images is the pyramid match kernel. The vector is an L1-normalised histogram, the
    input the χ² and intersection kernels of :mod:`fer_features.heads.kernels` expect. With
    ``norm='l2'`` every level has unit Euclidean norm (the vector: ``sqrt(len(pyramid))``);
    on presence vectors the dot product then counts the (cell, word) pairs two faces share,
    per level, as a cosine: the input of a linear SVM (the ``stacked-svm`` head).

    A descriptor belongs to the cell of its centre. The vocabulary is learned from the images
    given to ``fit`` only (in a pipeline: the training rows), which is what keeps
    cross-validation and the PublicTest/PrivateTest scores honest. Departures from the papers:
    one vocabulary is shared by every scale (as VLFeat's PHOW), and Ionescu et al. learn
    vocabularies of several thousand words by full k-means, where this defaults to 512 words
    for the cores it runs on.

    References
    ----------
    .. [1] Lazebnik, S., Schmid, C. and Ponce, J. "Beyond bags of features: Spatial pyramid
           matching for recognizing natural scene categories." CVPR 2006.
           :doi:`10.1109/CVPR.2006.68`
    .. [2] Ionescu, R. T., Popescu, M. and Grozea, C. "Local learning to improve bag of visual
           words model for facial expression recognition." ICML 2013 Workshop on Challenges in
           Representation Learning.
    .. [3] Sculley, D. "Web-scale k-means clustering." WWW 2010. :doi:`10.1145/1772690.1772862`

    Examples
    --------
    >>> import numpy as np
    >>> from fer_features.features import SIFTBoVW
    >>> faces = np.random.default_rng(0).integers(0, 256, (20, 48, 48), dtype=np.uint8)
    >>> SIFTBoVW(n_words=16, pyramid=(1, 2)).fit(faces).transform(faces[:2]).shape
    (2, 80)
    """

    _feature_prefix = "sift_bovw"
    #: the vocabulary is learned from the images given to fit (see ``learns_from_data``)
    learns_from_data = True

    def __init__(
        self,
        *,
        n_words=512,
        bin_sizes=(4, 6, 8),
        step=2,
        pyramid=(1, 2, 4),
        encoding="counts",
        norm="l1",
        sparse_output=False,
        root=True,
        mirror=False,
        n_train_descriptors=200_000,
        random_state=0,
        n_jobs=None,
    ):
        self.n_words = n_words
        self.bin_sizes = bin_sizes
        self.step = step
        self.pyramid = pyramid
        self.encoding = encoding
        self.norm = norm
        self.sparse_output = sparse_output
        self.root = root
        self.mirror = mirror
        self.n_train_descriptors = n_train_descriptors
        self.random_state = random_state
        self.n_jobs = n_jobs

    # ------------------------------------------------------------------ parameters
    def _check_params(self) -> None:
        if self.encoding not in _ENCODINGS:
            raise ValueError(f"encoding must be one of {', '.join(map(repr, _ENCODINGS))}, got {self.encoding!r}")
        if self.norm not in _NORMS:
            raise ValueError(f"norm must be one of {', '.join(map(repr, _NORMS))}, got {self.norm!r}")
        if int(self.n_words) < 2:
            raise ValueError(f"n_words must be at least 2, got {self.n_words!r}")
        self._check_geometry()

    def _level_weights(self) -> np.ndarray:
        n_levels = len(self.pyramid)
        weights = np.asarray([1.0 / 2 ** (n_levels - 1)] + [1.0 / 2 ** (n_levels - lvl) for lvl in range(1, n_levels)])
        return weights / weights.sum()

    def _n_features(self, image_shape):
        return int(self.n_words) * sum(int(g) ** 2 for g in self.pyramid)

    # ----------------------------------------------------------------------------- learning
    def fit(self, X, y=None):
        """Learn the visual vocabulary from descriptors of these images.

        Parameters
        ----------
        X : ndarray of shape (n_samples, height, width), dtype uint8
            Training face crops.
        y : ignored

        Returns
        -------
        self
        """
        from sklearn.cluster import MiniBatchKMeans

        X = self._validate(X, reset=True)
        self._check_params()
        sample, n_pos = self._sample_descriptors(X)
        if len(sample) < int(self.n_words):
            raise ValueError(
                f"SIFTBoVW: {len(sample)} descriptors cannot make {self.n_words} words; "
                "fit on more images or lower n_words"
            )
        kmeans = MiniBatchKMeans(
            n_clusters=int(self.n_words), batch_size=4096, n_init=3, max_no_improvement=20, random_state=self.random_state
        ).fit(sample)
        self.vocabulary_ = kmeans.cluster_centers_.astype(np.float32)
        self.kmeans_inertia_ = float(kmeans.inertia_ / len(sample))
        self.n_descriptors_ = int(n_pos)
        self._n_features_out = self._n_features(self.image_shape_)
        return self

    def _words(self, desc: np.ndarray) -> np.ndarray:
        """Nearest visual word of each descriptor: ``(n, p)`` int."""
        flat = desc.reshape(-1, DESCRIPTOR_SIZE)
        c2 = np.einsum("ij,ij->i", self.vocabulary_, self.vocabulary_)
        out = np.empty(len(flat), np.int64)
        for s in range(0, len(flat), 65536):
            block = flat[s : s + 65536]
            out[s : s + 65536] = np.argmin(c2[None, :] - 2.0 * (block @ self.vocabulary_.T), axis=1)
        return out.reshape(desc.shape[:2])

    def _encode(self, X):
        import scipy.sparse as sp

        desc, centres = self._descriptors(X)
        words = self._words(desc)
        cells = self._cells(centres)  # (levels, p)
        k = int(self.n_words)
        n_cells = sum(int(g) ** 2 for g in self.pyramid)
        n = len(X)
        # column of (cell, word) for every descriptor at every level, counted per image at once
        cols = (cells[:, None, :] * k + words[None, :, :]).transpose(1, 0, 2).reshape(n, -1)
        rows = np.repeat(np.arange(n), cols.shape[1])
        hist = sp.csr_matrix((np.ones(rows.size, np.float32), (rows, cols.ravel())), shape=(n, n_cells * k))
        hist.sum_duplicates()
        if self.encoding == "presence":
            hist.data[:] = 1.0
        # per-image, per-level scale factors, applied to the stored values only
        n_levels = len(self.pyramid)
        level_of_col = np.repeat(np.arange(n_levels), [int(g) ** 2 * k for g in self.pyramid])
        level = level_of_col[hist.indices]
        image = np.repeat(np.arange(n), np.diff(hist.indptr))
        if self.norm == "l1":
            mass = np.zeros((n, n_levels))
            np.add.at(mass, (image, level), hist.data)
            scale = self._level_weights()[None, :] / np.maximum(mass, 1e-12)
        else:
            energy = np.zeros((n, n_levels))
            np.add.at(energy, (image, level), hist.data.astype(np.float64) ** 2)
            scale = 1.0 / np.maximum(np.sqrt(energy), 1e-12)
        hist.data *= scale[image, level].astype(np.float32)
        return hist if self.sparse_output else hist.toarray()
