"""The ``cnn`` feature: the embedding (penultimate layer) of a CNN trained on FER2013."""

from __future__ import annotations

import numpy as np

from fer_features.cnn.classifier import CNNModuleMixin
from fer_features.config import IMAGE_SIZE, TTA_MODES
from fer_features.features.base import FaceImageTransformer
from fer_features.torch_utils import batched_forward


class CNNEmbedding(CNNModuleMixin, FaceImageTransformer):
    """Embeddings of face crops from a trained CNN's penultimate layer.

    Loads a checkpoint written by ``fer train --clf cnn`` (or
    :func:`fer_features.cnn.checkpoints.save_checkpoint`) in ``fit`` and computes, in ``transform``,
    the output of its embedding layer (after ReLU) batch by batch under
    ``torch.inference_mode()`` on the chosen device, gathered on the CPU.

    Parameters
    ----------
    checkpoint : str or path-like
        The CNN checkpoint (``.pt``).
    batch_size : int, default=256
        Images per forward pass. The output does not depend on it (eval mode).
    device : {'auto', 'cpu', 'cuda', 'mps'}, default='auto'
        ``'auto'``: CUDA if available, else MPS, else CPU.
    precision : {'auto', 'bf16', 'fp32', 'int8'}, default='auto'
        Inference arithmetic (:func:`~fer_features.torch_utils.use_bf16`): bf16 autocast on CUDA
        and on CPUs with native bf16, float32 elsewhere; ``'int8'``: the statically quantized
        network on the CPU (:mod:`fer_features.cnn.int8`; needs the checkpoint's calibration).
        The embeddings are float32 in every mode.
    tta : {'none', 'flip', 'ten-crop'}, default='none'
        Test-time augmentation of the embedding: the mean of the embeddings of each face's views
        (:func:`~fer_features.cnn.recipe.tta_views`; ``'flip'``: the face and its mirror image).
        It applies in ``fit`` and ``transform`` alike, so a head is trained on the same kind of
        vector it sees at prediction; it costs one forward pass per view.
    n_jobs : None
        Unused (torch parallelises inside each batch); kept for the feature registry's interface.

    Attributes
    ----------
    module_ : torch.nn.Module
        The network, in eval mode, on ``device_``.
    device_ : torch.device
    image_shape_ : tuple of (int, int)
    int8_calibration_ : dict or None
        The checkpoint's int8 activation scales (:func:`~fer_features.cnn.int8.calibrate_int8`).

    Notes
    -----
    Output: ``(n_samples, embedding_dim)`` float32 (256 for the ``small`` preset, 512 for
    ``large``), columns ``cnn0 …``. Saving (skops or pickle) stores the weights as numpy arrays; loading puts them on
    the device available then.
    """

    _feature_prefix = "cnn"
    _min_size = 16
    # torch's threads use the cores: worker processes are slower (BENCHMARKS.md, "Measurements behind defaults in the code")
    _process_parallel = False

    def __init__(self, *, checkpoint=None, batch_size=256, device="auto", precision="auto", tta="none", n_jobs=None):
        self.checkpoint = checkpoint
        self.batch_size = batch_size
        self.device = device
        self.precision = precision
        self.tta = tta
        self.n_jobs = n_jobs

    def _check_params(self) -> None:
        from fer_features.cnn.checkpoints import load_checkpoint

        if self.checkpoint is None:
            raise ValueError(
                "CNNEmbedding needs a checkpoint: train one with `fer train --clf cnn` or pass --cnn-checkpoint PATH"
            )
        if self._tta() not in TTA_MODES:
            raise ValueError(f"unknown TTA mode {self.tta!r} for the cnn embedding; expected one of {', '.join(TTA_MODES)}")
        self._load(load_checkpoint(self.checkpoint))

    def _tta(self) -> str:
        return getattr(self, "tta", "none")  # estimators pickled before the parameter existed

    def _n_features(self, image_shape):
        return int(self.module_.classifier.in_features)

    def feature_dims(self, image_shape=(IMAGE_SIZE, IMAGE_SIZE)) -> int:
        """The embedding size: from the network once fitted, else from the checkpoint's configuration.

        Parameters
        ----------
        image_shape : tuple of (int, int), default=(48, 48)
            Unused: the network pools globally, so the size does not depend on it.

        Returns
        -------
        int

        Raises
        ------
        ValueError, FileNotFoundError
            Without a checkpoint, or for an unreadable one.
        """
        from fer_features.cnn.checkpoints import load_checkpoint

        if hasattr(self, "module_"):  # fitted: the network is loaded already
            return self._n_features(image_shape)
        if self.checkpoint is None:
            raise ValueError(
                "CNNEmbedding needs a checkpoint: train one with `fer train --clf cnn` or pass --cnn-checkpoint PATH"
            )
        return int(load_checkpoint(self.checkpoint)["config"]["net"]["embedding_dim"])

    def _embed(self, X: np.ndarray) -> np.ndarray:
        from fer_features.cnn.recipe import mean_over_views, to_tensor

        embed, tta = self.module_.embed, self._tta()
        xt = to_tensor(X, self.mean_, self.std_)
        if self._precision() == "int8":
            return self._int8_forward(self._int8_module().embed, xt, tta).numpy().astype(np.float32)
        out = batched_forward(lambda xb: mean_over_views(embed, xb, tta), xt, self.device_, self.batch_size, net=self.module_, precision=self._precision())
        return out.numpy().astype(np.float32)

    def _extract(self, X):
        # called by FaceImageTransformer.transform on chunks of 512 crops, with progress reports
        return self._embed(X)
