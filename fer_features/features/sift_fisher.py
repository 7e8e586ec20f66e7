"""Dense SIFT Fisher vectors over a spatial pyramid (the ``sift-fisher`` feature)."""

from __future__ import annotations

import numpy as np

from fer_features.features.sift_bovw import DESCRIPTOR_SIZE, _DenseSIFTEncoder

# Images encoded at once: their descriptors' posteriors are (images x descriptors x components).
_BATCH = 128


class SIFTFisherVector(_DenseSIFTEncoder):
    """Dense SIFT descriptors encoded as improved Fisher vectors, one per spatial-pyramid cell.

    The descriptors are those of :class:`~fer_features.features.SIFTBoVW` (dense RootSIFT at
    each bin size of ``bin_sizes``, every ``step`` pixels). ``fit`` reduces descriptors sampled
    from the training images by PCA to ``pca_components`` dimensions and fits a Gaussian
    mixture with ``n_components`` diagonal components to them (scikit-learn's ``PCA`` and
    ``GaussianMixture``). ``transform`` describes each cell of the pyramid by the Fisher vector
    of its descriptors [1]_: for every component, the posterior-weighted mean of the
    descriptors' deviation from the component's mean and of their squared deviation, in units
    of its standard deviation, scaled by the Fisher information of the mixture weights, then
    signed square root and L2 normalisation (the "improved" Fisher vector of Perronnin et al.
    [2]_). Where a bag of visual words keeps which word a descriptor is nearest to, a Fisher
    vector keeps where it lies around every component, so a few dozen components carry more
    than thousands of words (Chatfield et al. [3]_).

    Parameters
    ----------
    n_components : int, default=64
        Gaussian components (K): each gives 2 x ``pca_components`` numbers per cell.
    pca_components : int, default=64
        Dimensions the 128-dimensional descriptors are reduced to (D) before the mixture; PCA
        also decorrelates them, which a diagonal mixture assumes.
    bin_sizes : tuple of int, default=(4, 6, 8)
        Spatial bin widths, one descriptor scale each, in pixels (see :func:`dense_sift`).
    step : int, default=2
        Grid step of the descriptor centres, in pixels.
    pyramid : tuple of int, default=(1, 2)
        Cells along each side at each pyramid level: the whole face, then 2x2 cells.
    root : bool, default=True
        Use RootSIFT descriptors.
    mirror : bool, default=False
        Describe each face by the mean of its Fisher vector and its mirror image's (flipped left
        to right), as :class:`SIFTBoVW` does; twice the descriptors in ``transform``.
    n_train_descriptors : int, default=200000
        Descriptors sampled (evenly over the training images) to fit the PCA and the mixture.
    random_state : int, default=0
        Seed of the sample, the PCA and the mixture's initialisation.
    n_jobs : int, default=None
        Parallel joblib workers over chunks of images in ``transform``; ``None`` means 1.

    Attributes
    ----------
    image_shape_ : tuple of (int, int)
        Height and width of the images seen in ``fit``, in pixels.
    pca_ : sklearn.decomposition.PCA
        The descriptor projection, fitted on the sample.
    gmm_ : sklearn.mixture.GaussianMixture
        The mixture, ``covariance_type='diag'``, on the projected sample.
    n_descriptors_ : int
        Descriptors per image (all scales).

    Notes
    -----
    Output is ``(n_samples, n_cells * 2 * n_components * pca_components)`` dense float32, with
    ``n_cells = sum(g * g for g in pyramid)``: 40,960 columns for the defaults (160 KiB a
    face). Per cell the layout is the first-order block (component-major, then dimension), then
    the second-order block; cells are level-major then row-major; columns are named
    ``sift_fisher0 …``. Every cell has unit L2 norm (0 for a cell without descriptors), so the
    dot product of two faces is a sum of per-cell cosine similarities, the input of a linear
    model (the ``stacked-svm`` head's linear branch with ``linear_model='logreg'``). The PCA and
    the mixture are learned from the images given to ``fit`` only (in a pipeline: the training
    rows), which keeps cross-validation and the test scores honest.

    References
    ----------
    .. [1] Perronnin, F. and Dance, C. "Fisher kernels on visual vocabularies for image
           categorization." CVPR 2007. :doi:`10.1109/CVPR.2007.383266`
    .. [2] Perronnin, F., Sánchez, J. and Mensink, T. "Improving the Fisher kernel for
           large-scale image classification." ECCV 2010. :doi:`10.1007/978-3-642-15561-1_11`
    .. [3] Chatfield, K., Lempitsky, V., Vedaldi, A. and Zisserman, A. "The devil is in the
           details: an evaluation of recent feature encoding methods." BMVC 2011.
           :doi:`10.5244/C.25.76`

    Examples
    --------
    >>> import numpy as np
    >>> from fer_features.features import SIFTFisherVector
    >>> faces = np.random.default_rng(0).integers(0, 256, (20, 48, 48), dtype=np.uint8)
    >>> SIFTFisherVector(n_components=4, pca_components=8).fit(faces).transform(faces[:2]).shape
    (2, 320)
    """

    _feature_prefix = "sift_fisher"
    #: the PCA and the mixture are learned from the images given to fit (see ``learns_from_data``)
    learns_from_data = True

    def __init__(
        self,
        *,
        n_components=64,
        pca_components=64,
        bin_sizes=(4, 6, 8),
        step=2,
        pyramid=(1, 2),
        root=True,
        mirror=False,
        n_train_descriptors=200_000,
        random_state=0,
        n_jobs=None,
    ):
        self.n_components = n_components
        self.pca_components = pca_components
        self.bin_sizes = bin_sizes
        self.step = step
        self.pyramid = pyramid
        self.root = root
        self.mirror = mirror
        self.n_train_descriptors = n_train_descriptors
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _check_params(self) -> None:
        if int(self.n_components) < 1:
            raise ValueError(f"n_components must be at least 1, got {self.n_components!r}")
        if not 1 <= int(self.pca_components) <= DESCRIPTOR_SIZE:
            raise ValueError(f"pca_components must be 1..{DESCRIPTOR_SIZE}, got {self.pca_components!r}")
        self._check_geometry()

    def _n_features(self, image_shape):
        return sum(int(g) ** 2 for g in self.pyramid) * 2 * int(self.n_components) * int(self.pca_components)

    def fit(self, X, y=None):
        """Fit the descriptor PCA and the Gaussian mixture on descriptors of these images.

        Parameters
        ----------
        X : ndarray of shape (n_samples, height, width), dtype uint8
            Training face crops.
        y : ignored

        Returns
        -------
        self

        Raises
        ------
        ValueError
            For invalid parameters or images, or fewer sampled descriptors than
            ``max(n_components, pca_components)``.
        """
        from sklearn.decomposition import PCA
        from sklearn.mixture import GaussianMixture

        X = self._validate(X, reset=True)
        self._check_params()
        sample, n_pos = self._sample_descriptors(X)
        if len(sample) < max(int(self.n_components), int(self.pca_components)):
            raise ValueError(
                f"SIFTFisherVector: {len(sample)} descriptors cannot fit {self.n_components} components "
                f"in {self.pca_components} dimensions; fit on more images or lower them"
            )
        self.pca_ = PCA(n_components=int(self.pca_components), random_state=self.random_state).fit(sample)
        self.gmm_ = GaussianMixture(
            n_components=int(self.n_components), covariance_type="diag", reg_covar=1e-4, max_iter=100,
            random_state=self.random_state,
        ).fit(self.pca_.transform(sample))
        self.n_descriptors_ = int(n_pos)
        self._n_features_out = self._n_features(self.image_shape_)
        return self

    def _encode(self, X):  # the Fisher vectors of the faces
        k, d = int(self.n_components), int(self.pca_components)
        mu = self.gmm_.means_.astype(np.float32)  # (k, d)
        sd = np.sqrt(self.gmm_.covariances_).astype(np.float32)
        w = self.gmm_.weights_.astype(np.float32)
        scale1 = 1.0 / (sd * np.sqrt(w)[:, None])  # first order: (sum γ (x - μ)) / (σ √w)
        scale2 = 1.0 / np.sqrt(2.0 * w)[:, None]  # second order: (sum γ ((x - μ)² / σ² - 1)) / √(2w)
        out = np.empty((len(X), self._n_features_out), np.float32)
        for start in range(0, len(X), _BATCH):
            desc, centres = self._descriptors(X[start : start + _BATCH])
            n, p = desc.shape[:2]
            z = self.pca_.transform(desc.reshape(-1, DESCRIPTOR_SIZE)).astype(np.float32)
            post = self.gmm_.predict_proba(z).astype(np.float32).reshape(n, p, k)
            z = z.reshape(n, p, d)
            cells = self._cells(centres)  # (levels, p)
            col, first_cell = 0, 0
            for g_side, level in zip(self.pyramid, cells):
                for cell in range(first_cell, first_cell + int(g_side) ** 2):
                    inside = level == cell
                    if not inside.any():  # a cell smaller than the grid step: no descriptors, zeros
                        out[start : start + n, col : col + 2 * k * d] = 0.0
                        col += 2 * k * d
                        continue
                    g, x = post[:, inside].transpose(0, 2, 1), z[:, inside]  # (n, k, t), (n, t, d)
                    s0 = g.sum(axis=2)[:, :, None]  # (n, k, 1)
                    s1, s2 = g @ x, g @ (x * x)  # (n, k, d)
                    first = (s1 - mu * s0) * scale1
                    second = ((s2 - 2 * mu * s1 + mu * mu * s0) / (sd * sd) - s0) * scale2
                    fv = np.concatenate([first.reshape(n, -1), second.reshape(n, -1)], axis=1) / inside.sum()
                    fv = np.sign(fv) * np.sqrt(np.abs(fv))  # power normalisation
                    fv /= np.maximum(np.linalg.norm(fv, axis=1, keepdims=True), 1e-12)
                    out[start : start + n, col : col + fv.shape[1]] = fv
                    col += fv.shape[1]
                first_cell += int(g_side) ** 2
        return out
