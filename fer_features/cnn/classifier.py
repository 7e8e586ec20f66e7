"""The CNN inside scikit-learn: an embedding transformer and the end-to-end classifier."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from fer_features.config import CNN_EPOCHS, IMAGE_SIZE
from fer_features.features.base import check_images
from fer_features.torch_utils import TorchModuleMixin, batched_forward, resolve_device, to_channels_last, use_bf16

_NO_INT8 = (
    "precision='int8' needs the checkpoint's int8 calibration, which this one lacks: add it with "
    "`fer quantize CHECKPOINT --data fer2013.csv.gz` (checkpoints trained since it exists carry one)"
)


class CNNModuleMixin(TorchModuleMixin):
    """A fer-features CNN checkpoint inside an estimator: loading, rebuilding, logits.

    Pickling is :class:`~fer_features.torch_utils.TorchModuleMixin`'s: weights on the CPU, the
    module rebuilt on the loading machine's device (with a warning when the device it was made
    for is missing there), in NHWC layout.
    """

    def _make_module(self):
        """An untrained module of the fitted architecture (for unpickling)."""
        from fer_features.cnn.net import build_net

        return build_net({**self.net_config_, "n_classes": self.n_classes_})

    def _to_layout(self, module):
        return to_channels_last(module)

    def _load(self, ckpt: dict) -> None:
        from fer_features.cnn.checkpoints import net_from_checkpoint

        self.device_ = resolve_device(self.device)
        self.module_ = self._to_layout(net_from_checkpoint(ckpt, self.device_))
        self.net_config_ = dict(ckpt["config"]["net"])
        self.n_classes_ = int(ckpt["n_classes"])
        self.mean_, self.std_ = float(ckpt["mean"]), float(ckpt["std"])
        self.int8_calibration_ = ckpt.get("int8")
        self.__dict__.pop("_int8_net", None)
        if self._precision() == "int8" and not self.int8_calibration_:
            raise ValueError(_NO_INT8)

    def _logits(self, X: np.ndarray, tta: str | bool = "none") -> np.ndarray:
        from fer_features.cnn.recipe import predict_logits, to_tensor

        xt = to_tensor(X, self.mean_, self.std_)
        if self._precision() == "int8":
            return self._int8_forward(self._int8_module(), xt, tta).numpy()
        logits = predict_logits(self.module_, xt, self.device_, self.batch_size, tta=tta, precision=self._precision())
        return logits.numpy()

    def _int8_forward(self, fn, xt, tta):
        """``fn`` (the int8 network or its ``embed``) over standardised faces, TTA-averaged, on the CPU."""
        import torch

        from fer_features.cnn.recipe import mean_over_views

        forward = lambda xb: mean_over_views(fn, xb, tta)  # noqa: E731
        return batched_forward(forward, xt, torch.device("cpu"), self.batch_size, precision="fp32", channels_last=False)

    def _int8_module(self):
        """The int8 network (:func:`~fer_features.cnn.int8.int8_network`), built once from the float weights."""
        qnet = self.__dict__.get("_int8_net")
        if qnet is None:
            from fer_features.cnn.int8 import int8_network

            calibration = getattr(self, "int8_calibration_", None)
            if not calibration:
                raise ValueError(_NO_INT8)
            qnet = self._int8_net = int8_network(self.module_, calibration)
        return qnet

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_int8_net", None)  # rebuilt from the float weights and the calibration on first use
        return state

    def _precision(self) -> str:
        return getattr(self, "precision", "auto")  # estimators pickled before the parameter existed

    def inference_precision(self) -> str:
        """``'int8'``, ``'bf16'`` or ``'fp32'``: the arithmetic of inference on this machine (fitted estimators)."""
        if self._precision() == "int8":
            return "int8"
        return "bf16" if self._uses_bf16() else "fp32"

    def _uses_bf16(self) -> bool:
        """Whether inference runs in bf16 on this machine."""
        return self._precision() != "int8" and use_bf16(self.device_, self._precision())


class CNNClassifier(CNNModuleMixin, ClassifierMixin, BaseEstimator):
    """The CNN trained end to end: the baseline the feature pipelines are judged against.

    Every hyper-parameter of a training run (:class:`~fer_features.cnn.recipe.TrainConfig`) is a
    parameter of the estimator, so :class:`~sklearn.model_selection.GridSearchCV` can search
    them: ``GridSearchCV(CNNClassifier(), {"lr": [0.02, 0.05], "max_rotation": [5, 10]})``.
    :meth:`from_checkpoint` gives a fitted one from a saved checkpoint, without training.

    Parameters
    ----------
    preset : {'small', 'medium', 'large'}, default='small'
        Network size (:data:`~fer_features.cnn.presets.PRESETS`); ``small`` and ``medium`` suit 2 CPU
        cores, ``large`` a GPU.
    epochs : int, default=25
        Most epochs; training stops after ``patience`` epochs without a better PublicTest score.
    batch_size : int, default=128
    lr : float, default=0.05
        Peak learning rate of the one-cycle schedule (SGD, Nesterov momentum 0.9).
    weight_decay, label_smoothing, max_rotation, max_shift, max_scale, erasing, patience
        Training hyper-parameters, as in :class:`~fer_features.cnn.recipe.TrainConfig`.
    photometric : float, default=0.0
        Probability per face of a random photometric transform in training (brightness,
        contrast, gamma, blur, noise, low resolution, JPEG; :mod:`fer_features.cnn.photometric`);
        0 is off.
    pipeline_views : float, default=0.0
        Probability per face of training on the face as the photo pipeline frames it (found by
        the default detector in the crop made a photo, then re-aligned:
        :func:`~fer_features.data.photos.pipeline_views`, made once in :meth:`fit`, about 25 ms
        a face on one core); 0 is off.
    net : dict, optional
        Architecture (``widths``, ``convs_per_stage``, ``embedding_dim``, ``dropout``); default
        the preset's.
    seed : int, default=0
    precision : {'auto', 'bf16', 'fp32', 'int8'}, default='auto'
        Training and inference arithmetic (:func:`~fer_features.torch_utils.use_bf16`): bf16 on
        CUDA and on CPUs with native bf16, float32 elsewhere. ``'int8'``: trained as ``'auto'``,
        predicted by the statically quantized network on the CPU
        (:mod:`fer_features.cnn.int8`). Every fit calibrates the int8 activation ranges on
        1,024 of its training faces (``checkpoint_["int8"]``, ~10 s), so any model can switch.
    channels_last : bool, default=True
    mixup, cutmix : float, default=0.0
        Beta alphas of mixup / CutMix; 0 is off.
    ema : float, default=0.0
        Decay of the weight average that is selected and kept; 0 is off.
    init_checkpoint : str, default=''
        A checkpoint (``.pt``) of the same network to start from: a warm restart of the schedule.
    teacher : str, default=''
        A checkpoint (``.pt``) to distil: its mirror-averaged distributions on the Training faces
        are mixed into the targets (see :class:`~fer_features.cnn.recipe.TrainConfig`). Several
        paths separated by commas: an ensemble teacher, their distributions averaged.
    distill, distill_temperature : float, default=0.5, 2.0
        Weight of the teacher's distribution in the targets, and its softmax temperature.
    device : {'auto', 'cpu', 'cuda', 'mps'}, default='auto'
    tta : {False, True, 'flip', 'ten-crop'}, default=False
        Test-time augmentation at prediction (:func:`~fer_features.cnn.recipe.tta_views`);
        True is ``'flip'`` (each face and its mirror image).
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
        The best checkpoint (weights, config, history, ``"int8"`` calibration).
    int8_calibration_ : dict or None
        Its int8 activation scales (:func:`~fer_features.cnn.int8.calibrate_int8`).
    """

    def __init__(
        self,
        *,
        preset="small",
        epochs=CNN_EPOCHS,
        batch_size=128,
        lr=0.05,
        weight_decay=5e-4,
        label_smoothing=0.1,
        max_rotation=10.0,
        max_shift=4.0,
        max_scale=0.1,
        erasing=0.25,
        photometric=0.0,
        pipeline_views=0.0,
        patience=10,
        net=None,
        seed=0,
        precision="auto",
        channels_last=True,
        mixup=0.0,
        cutmix=0.0,
        ema=0.0,
        init_checkpoint="",
        teacher="",
        distill=0.5,
        distill_temperature=2.0,
        device="auto",
        tta=False,
        validation_fraction=0.1,
        resume_path=None,
    ):
        self.preset = preset
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.label_smoothing = label_smoothing
        self.max_rotation = max_rotation
        self.max_shift = max_shift
        self.max_scale = max_scale
        self.erasing = erasing
        self.photometric = photometric
        self.pipeline_views = pipeline_views
        self.patience = patience
        self.net = net
        self.seed = seed
        self.precision = precision
        self.channels_last = channels_last
        self.mixup = mixup
        self.cutmix = cutmix
        self.ema = ema
        self.init_checkpoint = init_checkpoint
        self.teacher = teacher
        self.distill = distill
        self.distill_temperature = distill_temperature
        self.device = device
        self.tta = tta
        self.validation_fraction = validation_fraction
        self.resume_path = resume_path

    @classmethod
    def from_checkpoint(cls, path, *, tta=False, device="auto", batch_size=None, precision="auto"):
        """A fitted classifier from a checkpoint written by ``fer train --clf cnn`` (``.pt``).

        Parameters
        ----------
        path : str, path-like or dict
            The checkpoint file, or a checkpoint already in memory
            (:func:`~fer_features.cnn.checkpoints.load_checkpoint`'s dict, e.g. a soup being made).
        tta : {False, True, 'flip', 'ten-crop'}, default=False
        device : {'auto', 'cpu', 'cuda', 'mps'}, default='auto'
        batch_size : int, optional
            Images per inference batch. Default for int8: the fastest size measured when the
            checkpoint was calibrated (``"int8"``'s ``"batch_size"``, written by ``fer quantize``),
            else 256; otherwise 512, the fastest measured here (BENCHMARKS.md).
        precision : {'auto', 'bf16', 'fp32', 'int8'}, default='auto'
            Inference arithmetic; ``'int8'`` needs the checkpoint's calibration (``"int8"``:
            written by training, or by ``fer quantize`` for an older checkpoint).

        Returns
        -------
        CNNClassifier
            Its training parameters are the checkpoint's; ``classes_`` its class names.

        Raises
        ------
        FileNotFoundError, ValueError
            If the file is missing, not a CNN checkpoint, or has no class names (a checkpoint of
            :func:`~fer_features.cnn.loop.train_cnn` called directly).
        """
        from dataclasses import fields

        from fer_features.cnn.checkpoints import load_checkpoint
        from fer_features.cnn.recipe import TrainConfig

        ckpt = path if isinstance(path, dict) else load_checkpoint(path)
        if not ckpt.get("classes"):
            name = "the checkpoint in memory" if isinstance(path, dict) else path
            raise ValueError(f"{name}: the checkpoint has no class names (save it from CNNClassifier or `fer train --clf cnn`)")
        known = {f.name for f in fields(TrainConfig)}
        params = {k: v for k, v in ckpt["config"].items() if k in known}
        params["net"] = dict(ckpt["config"]["net"])
        if batch_size is None:
            batch_size = int((ckpt.get("int8") or {}).get("batch_size", 256)) if precision == "int8" else 512
        params.update(tta=tta, device=device, batch_size=batch_size, precision=precision)
        clf = cls(**params)
        clf._load(ckpt)  # the network is the checkpoint's own config, whatever its preset
        clf.checkpoint_ = ckpt
        clf.classes_ = np.asarray(ckpt["classes"])
        clf.image_shape_ = (IMAGE_SIZE, IMAGE_SIZE)
        return clf

    def train_config(self):
        """The :class:`~fer_features.cnn.recipe.TrainConfig` of these parameters."""
        from dataclasses import fields

        from fer_features.cnn.recipe import TrainConfig

        names = [f.name for f in fields(TrainConfig) if f.name != "net"]
        params = {name: getattr(self, name) for name in names}
        if params["precision"] == "int8":  # int8 is inference only: training runs in the machine's best float
            params["precision"] = "auto"
        return TrainConfig(**params, net=dict(self.net or {}))

    def fit(self, X, y, X_val=None, y_val=None, on_epoch=None, soft=None, soft_classes=None):
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
        soft : ndarray of shape (n_samples, n_soft_classes), dtype float, optional
            Target distributions (e.g. FERPlus votes) to train on instead of ``y``
            (:func:`~fer_features.cnn.recipe.soft_cross_entropy`); needs ``X_val``.
        soft_classes : sequence of str, optional
            The class of each column of ``soft``; every label of ``y`` must be among them.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            If ``soft`` comes without ``X_val`` or ``soft_classes``, or its columns do not cover
            the labels.
        """
        from fer_features.cnn.loop import train_cnn

        X = check_images(X, estimator="CNNClassifier", min_size=16)
        y = np.asarray(y)
        self.classes_ = np.unique(y)
        y_idx = np.searchsorted(self.classes_, y)
        soft_idx = None
        if soft is not None:
            if X_val is None or soft_classes is None:
                raise ValueError("training on soft labels needs X_val/y_val and soft_classes")
            soft_classes = [str(c) for c in soft_classes]
            self.classes_ = np.unique(np.concatenate([self.classes_, np.asarray(soft_classes, dtype=self.classes_.dtype)]))
            y_idx = np.searchsorted(self.classes_, y)
            order = [soft_classes.index(str(c)) if str(c) in soft_classes else None for c in self.classes_]
            if None in order:
                raise ValueError(f"soft_classes {soft_classes} do not cover the labels {list(self.classes_)}")
            soft_idx = np.asarray(soft, dtype=np.float32)[:, order]
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
        views = None
        if self.pipeline_views > 0:  # of the training faces only, once the validation ones are set apart
            from fer_features.data.photos import pipeline_views

            views, _ = pipeline_views(X)
        ckpt = train_cnn(
            X, y_idx, X_val, yv_idx, config=self.train_config(), device=self.device, resume_path=self.resume_path,
            on_epoch=on_epoch, soft_train=soft_idx, classes=[str(c) for c in self.classes_], views_train=views,
        )
        ckpt["n_classes"] = len(self.classes_)
        ckpt["classes"] = [str(c) for c in self.classes_]
        from fer_features.cnn.int8 import calibrate_checkpoint

        ckpt["int8"] = calibrate_checkpoint(ckpt, X, seed=self.seed)  # the checkpoint then serves precision='int8'
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
