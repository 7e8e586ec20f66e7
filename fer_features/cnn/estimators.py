"""The CNN inside scikit-learn: an embedding transformer and the end-to-end classifier."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from fer_features.features.base import FaceImageTransformer, check_images


class _TorchModuleMixin:
    """Pickling of an estimator holding a torch module in ``module_`` (after skorch).

    The weights are pickled on the CPU; unpickling rebuilds the module on the device named by
    the estimator's ``device`` parameter as it resolves on the loading machine (``'auto'``:
    CUDA, else MPS, else CPU), so a model trained on a GPU loads on a laptop.
    """

    def __getstate__(self):
        state = self.__dict__.copy()
        if "module_" in state:
            module = state.pop("module_")
            state["_module_state"] = {k: v.detach().cpu() for k, v in module.state_dict().items()}
            state.pop("device_", None)
        return state

    def __setstate__(self, state):
        module_state = state.pop("_module_state", None)
        self.__dict__.update(state)
        if module_state is not None:
            from fer_features.cnn.net import resolve_device

            try:
                self.device_ = resolve_device(self.device)
            except ValueError:  # e.g. pickled with device='cuda', loaded without a GPU
                self.device_ = resolve_device("auto")
            net = self._make_module()
            net.load_state_dict(module_state)
            self.module_ = net.to(self.device_).eval()

    def _make_module(self):
        """An untrained module of the fitted architecture (for unpickling)."""
        from fer_features.cnn.net import build_net

        return build_net({**self.net_config_, "n_classes": self.n_classes_})

    def _load(self, ckpt: dict) -> None:
        from fer_features.cnn.net import resolve_device
        from fer_features.cnn.train import net_from_checkpoint

        self.device_ = resolve_device(self.device)
        self.module_ = net_from_checkpoint(ckpt, self.device_)
        self.net_config_ = dict(ckpt["config"]["net"])
        self.n_classes_ = int(ckpt["n_classes"])
        self.mean_, self.std_ = float(ckpt["mean"]), float(ckpt["std"])

    def _logits(self, X: np.ndarray, tta: bool = False) -> np.ndarray:
        from fer_features.cnn.train import predict_logits, to_tensor

        logits = predict_logits(self.module_, to_tensor(X, self.mean_, self.std_), self.device_, self.batch_size, tta=tta)
        return logits.numpy()


class CNNEmbedding(_TorchModuleMixin, FaceImageTransformer):
    """Embeddings of face crops from a trained CNN's penultimate layer.

    Loads a checkpoint written by ``fer train --clf cnn`` (or
    :func:`fer_features.cnn.train.save_checkpoint`) in ``fit`` and computes, in ``transform``,
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
    n_jobs : None
        Unused (torch parallelises inside each batch); kept for the feature registry's interface.

    Attributes
    ----------
    module_ : torch.nn.Module
        The network, in eval mode, on ``device_``.
    device_ : torch.device
    image_shape_ : tuple of (int, int)

    Notes
    -----
    Output: ``(n_samples, embedding_dim)`` float32 (256 for the ``small`` preset, 512 for
    ``large``), columns ``cnn0 …``. Pickling stores the weights on the CPU; loading puts them on
    the device available then.
    """

    _feature_prefix = "cnn"
    _min_size = 16
    # torch's threads use the cores; in worker processes 3,589 crops took 13.0 s against 7.0 s
    _process_parallel = False

    def __init__(self, *, checkpoint=None, batch_size=256, device="auto", n_jobs=None):
        self.checkpoint = checkpoint
        self.batch_size = batch_size
        self.device = device
        self.n_jobs = n_jobs

    def _check_params(self) -> None:
        from fer_features.cnn.train import load_checkpoint

        if self.checkpoint is None:
            raise ValueError(
                "CNNEmbedding needs a checkpoint: train one with `fer train --clf cnn` or pass --cnn-checkpoint PATH"
            )
        self._load(load_checkpoint(self.checkpoint))

    def _n_features(self, image_shape):
        return int(self.module_.classifier.in_features)

    def _embed(self, X: np.ndarray) -> np.ndarray:
        from fer_features.cnn.train import batched_forward, to_tensor

        xt = to_tensor(X, self.mean_, self.std_)
        out = batched_forward(self.module_.embed, xt, self.device_, self.batch_size, net=self.module_, mixed_precision=False)
        return out.numpy().astype(np.float32)

    def _extract(self, X):
        # called by FaceImageTransformer.transform on chunks of 512 crops, with progress reports
        return self._embed(X)


class CNNClassifier(_TorchModuleMixin, ClassifierMixin, BaseEstimator):
    """The CNN trained end to end: the baseline the feature pipelines are judged against.

    Parameters
    ----------
    preset : {'small', 'large'}, default='small'
        Network size; ``small`` suits 2 CPU cores, ``large`` a GPU.
    epochs : int, default=40
    batch_size : int, default=128
    lr : float, default=0.05
    seed : int, default=0
    device : {'auto', 'cpu', 'cuda', 'mps'}, default='auto'
    tta : bool, default=False
        Average the logits of each face and its mirror image at prediction.
    validation_fraction : float, default=0.1
        Share of the training images held out for checkpoint selection when ``fit`` is given
        no ``X_val``.
    resume_path : str, optional
        Where training state is saved after each epoch, to resume an interrupted run.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The labels seen in fit, sorted.
    module_ : torch.nn.Module
    checkpoint_ : dict
        The best checkpoint (weights, config, history).
    """

    def __init__(
        self,
        *,
        preset="small",
        epochs=40,
        batch_size=128,
        lr=0.05,
        seed=0,
        device="auto",
        tta=False,
        validation_fraction=0.1,
        resume_path=None,
    ):
        self.preset = preset
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.seed = seed
        self.device = device
        self.tta = tta
        self.validation_fraction = validation_fraction
        self.resume_path = resume_path

    def fit(self, X, y, X_val=None, y_val=None, on_epoch=None):
        """Train the network; the best epoch on the validation split is kept.

        Parameters
        ----------
        X : ndarray of shape (n_samples, 48, 48), dtype uint8
        y : array-like of shape (n_samples,)
            Labels (emotion names).
        X_val, y_val : optional
            Selection split (PublicTest); if absent, ``validation_fraction`` of X is held out.
        on_epoch : callable, optional
            Called with each epoch's record.

        Returns
        -------
        self
        """
        from fer_features.cnn.train import TrainConfig, train_cnn

        X = check_images(X, estimator="CNNClassifier", min_size=16)
        y = np.asarray(y)
        self.classes_ = np.unique(y)
        y_idx = np.searchsorted(self.classes_, y)
        if X_val is None:
            from sklearn.model_selection import train_test_split

            X, X_val, y_idx, yv_idx = train_test_split(
                X, y_idx, test_size=self.validation_fraction, stratify=y_idx, random_state=self.seed
            )
        else:
            X_val = check_images(X_val, estimator="CNNClassifier", min_size=16)
            unknown = set(np.unique(y_val)) - set(self.classes_)
            if unknown:
                raise ValueError(f"validation labels {sorted(unknown)} do not occur in the training labels")
            yv_idx = np.searchsorted(self.classes_, np.asarray(y_val))
        cfg = TrainConfig(preset=self.preset, epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, seed=self.seed)
        ckpt = train_cnn(X, y_idx, X_val, yv_idx, config=cfg, device=self.device, resume_path=self.resume_path, on_epoch=on_epoch)
        ckpt["n_classes"] = len(self.classes_)
        ckpt["classes"] = [str(c) for c in self.classes_]
        self.checkpoint_ = ckpt
        self._load(ckpt)
        self.image_shape_ = tuple(X.shape[1:])
        return self

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("checkpoint_", None)  # the weights are in _module_state already
        return state

    def predict_proba(self, X):
        """Class probabilities (softmax of the logits), ``(n_samples, n_classes)`` float64."""
        check_is_fitted(self, "module_")
        X = check_images(X, estimator="CNNClassifier", min_size=16)
        logits = self._logits(X, tta=self.tta).astype(np.float64)
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)

    def predict(self, X):
        """Most probable label per image, ``(n_samples,)``."""
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.input_tags.two_d_array = False
        return tags
