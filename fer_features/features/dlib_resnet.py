"""dlib's 128-d ResNet face descriptor of face crops."""

from __future__ import annotations

import numpy as np

from fer_features.features.base import FaceImageTransformer
from fer_features.features.landmarks import LandmarkFeatures


class DlibResNetEmbedding(FaceImageTransformer):
    """The 128-d face descriptor of dlib's ResNet (``dlib_face_recognition_resnet_model_v1``).

    Each crop is upscaled, landmarked with the 68-point predictor as in
    :class:`~fer_features.features.LandmarkFeatures`, cut to dlib's aligned 150x150 face chip
    (``dlib.get_face_chip``) and embedded by the ResNet-29 that dlib trained for face
    recognition [1]_ (model file from ``face-recognition-models``). It encodes identity more than
    expression, which is what makes it an interesting control feature.

    It is slow on a CPU (each chip costs a ResNet forward pass on 150x150 pixels), so descriptors
    are cached on disk per chunk of images when ``cache_dir`` is set: a second transform of the
    same images is read from the cache.

    Parameters
    ----------
    upscale : int, default=4
        Integer factor the crop is enlarged by before landmarking.
    model_path : str, optional
        ResNet model file; defaults to the one in ``face-recognition-models``.
    cache_dir : str, optional
        Folder for the descriptor cache (joblib.Memory), keyed by the pixels and parameters.
    n_jobs : int, default=None
        Parallel joblib workers over chunks of images.

    Notes
    -----
    Output: ``(n_samples, 128)`` float32, columns ``dlib_resnet0 …``.

    References
    ----------
    .. [1] King, D. E. "High quality face recognition with deep metric learning." dlib blog,
           2017; He, K., et al. "Deep residual learning for image recognition." CVPR 2016.
    """

    _feature_prefix = "dlib_resnet"
    _min_size = 8

    def __init__(self, *, upscale=4, model_path=None, cache_dir=None, n_jobs=None):
        self.upscale = upscale
        self.model_path = model_path
        self.cache_dir = cache_dir
        self.n_jobs = n_jobs

    def _check_params(self) -> None:
        import os

        from fer_features.faces.dlib_models import dlib_model_path

        path = self.model_path or dlib_model_path("resnet")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"dlib ResNet model file {path} not found")

    def _n_features(self, image_shape):
        return 128

    def _extract(self, X):
        if self.cache_dir:
            from joblib import Memory

            return Memory(self.cache_dir, verbose=0).cache(_descriptors)(X, self.upscale, self.model_path)
        return _descriptors(X, self.upscale, self.model_path)


def _descriptors(X: np.ndarray, upscale: int, model_path) -> np.ndarray:
    import dlib
    from PIL import Image

    from fer_features.faces.dlib_models import dlib_model_path

    net = _resnet(str(model_path or dlib_model_path("resnet")))
    points = LandmarkFeatures(upscale=upscale).locate(X) * upscale
    h, w = X.shape[1:]
    chips = []
    for image, pts in zip(X, points):
        big = np.asarray(Image.fromarray(image).resize((w * upscale, h * upscale), Image.BICUBIC))
        rgb = np.ascontiguousarray(np.repeat(big[:, :, None], 3, axis=2))
        parts = dlib.points([dlib.point(int(round(x)), int(round(y))) for x, y in pts])
        rect = dlib.rectangle(int(pts[:, 0].min()), int(pts[:, 1].min()), int(pts[:, 0].max()), int(pts[:, 1].max()))
        chips.append(dlib.get_face_chip(rgb, dlib.full_object_detection(rect, parts), size=150, padding=0.25))
    return np.asarray(net.compute_face_descriptor(chips), dtype=np.float32).reshape(len(X), 128)


_NETS: dict = {}


def _resnet(path: str):
    import dlib

    if path not in _NETS:
        _NETS[path] = dlib.face_recognition_model_v1(path)
    return _NETS[path]
