"""A training run's options, checked once before any data is read: :class:`TrainSettings` → :class:`TrainPlan`."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from fer_features.config import (
    CNN_EPOCHS,
    DEFAULT_CLASSIFIER,
    DEFAULT_FEATURES,
    DEFAULT_PCA,
)


def class_weight_for(class_weight: str | None, balance: str = "none") -> str | None:
    """The heads' ``class_weight`` from a class-weight choice and a balance mode.

    Parameters
    ----------
    class_weight : {None, 'none', 'balanced'}
    balance : {'none', 'weights', 'oversample'}, default='none'
        ``'weights'`` means balanced class weights.

    Returns
    -------
    {None, 'balanced'}
    """
    if balance == "weights":
        return "balanced"
    return None if class_weight in (None, "none") else class_weight


@dataclass
class TrainSettings:
    """The options of a training run, checked by :meth:`check` before any data is read.

    Attributes
    ----------
    features : str or None
        Feature spec (``"hog+lbp+landmarks"``); None: that default, or the pixels for an
        end-to-end head such as ``cnn``.
    clf : str, default='svm'
        Classifier head (:func:`fer_features.heads.registry.list_classifiers`).
    pca : int or None, default=256
        Components after scaling; None (or 0) keeps every feature.
    class_weight : {None, 'balanced'}, default=None
    balance : {'none', 'weights', 'oversample'}, default='none'
    augment : bool, default=False
        Add mirrored copies of the Training faces.
    augment_shift : int, default=0
        With ``augment``, also one copy shifted by up to this many pixels.
    n_jobs : int or None, default=-1
    seed : int, default=0
    limit : int, default=0
        At most this many images per split (0: all).
    cache_dir : str or None
        Cache of fitted extractors (the pipeline's ``memory``).
    cnn_checkpoint : str or None
        Trained CNN for the ``cnn`` feature; without it the CNN is trained first. For the
        ``cnn-ensemble`` classifier, its networks: paths joined by ``+``.
    cnn_params : dict
        :class:`~fer_features.cnn.CNNClassifier` parameters of a CNN that is trained (``preset``,
        ``epochs``, ``device`` …); ``device`` is also the ``cnn`` feature's. For the
        ``cnn-ensemble`` classifier: its ``device``, ``precision``, ``tta`` and
        ``prior_correction``.
    cnn_param_items : sequence of str
        More of them as ``fer train --cnn-param`` gives them, ``KEY=VALUE``
        (:func:`~fer_features.training.cnn.parse_cnn_params`), parsed into ``cnn_params`` when
        the settings are made (an entry of ``cnn_params`` wins).
    feature_params : dict of {name: dict} or sequence of str
        Extractor parameters, e.g. ``{"hog": {"orientations": 12}}``, or as ``--feature-param``
        gives them (``["hog.orientations=12"]``), parsed with the spec when the settings are
        made (:func:`~fer_features.features.parse_features`).
    calibrate : bool
        Temperature-scale the head's probabilities on PublicTest after the fit
        (:func:`temperature_scale_head`; feature pipelines; ``cnn-ensemble`` fits its own).
    """

    features: str | None = None
    clf: str = DEFAULT_CLASSIFIER
    pca: int | None = DEFAULT_PCA
    class_weight: str | None = None
    balance: str = "none"
    augment: bool = False
    augment_shift: int = 0
    n_jobs: int | None = -1
    seed: int = 0
    limit: int = 0
    cache_dir: str | os.PathLike | None = None
    cnn_checkpoint: str | os.PathLike | None = None
    cnn_params: dict = field(default_factory=dict)
    feature_params: dict | list = field(default_factory=dict)
    calibrate: bool = False
    cnn_param_items: tuple[str, ...] = ()

    def __post_init__(self):
        from fer_features.heads.registry import END_TO_END, PRETRAINED

        self.end_to_end = self.clf in END_TO_END
        self.pretrained = self.clf in PRETRAINED  # networks trained already: fit loads them
        if self.features is None and not self.end_to_end:
            self.features = DEFAULT_FEATURES
        from fer_features.features import parse_features
        from fer_features.training.cnn import parse_cnn_params

        # the spec and its parameters, parsed once: an unknown or repeated name is a ValueError here, before anything else
        names, self.feature_params = parse_features(self.features if self.features != "pixels" else None, self.feature_params)
        self.feature_names = tuple(names)
        self.pca = self.pca or None
        self.cnn_params = {"epochs": CNN_EPOCHS, **parse_cnn_params(list(self.cnn_param_items)), **self.cnn_params}

    @property
    def uses_cnn(self) -> bool:
        """Whether the feature spec has the ``cnn`` feature."""
        return "cnn" in self.feature_names

    @property
    def head_class_weight(self) -> str | None:
        """``class_weight`` of the head (:func:`class_weight_for`)."""
        return class_weight_for(self.class_weight, self.balance)

    def check(self, out: str | os.PathLike | None = None):
        """Check names and parameters; build the pipeline when it can be built before training.

        Parameters
        ----------
        out : path-like, optional
            Where the model goes (a CNN trained end to end saves its resume state beside it).

        Returns
        -------
        Pipeline or None
            Unfitted; None for a pipeline with the ``cnn`` feature and no checkpoint yet (its
            extractors and head are checked alone).

        Raises
        ------
        ValueError
            For an unknown name, a bad parameter or options that do not go together.
        FileNotFoundError
            For a missing CNN checkpoint or weights file.
        """
        from fer_features.features import make_checked_features, make_features
        from fer_features.heads.registry import make_classifier
        from fer_features.training.pipelines import build_pipeline, feature_pipeline

        uses_cnn = self.uses_cnn  # an unknown classifier: make_classifier's ValueError below, listing the valid ones
        if self.end_to_end or (uses_cnn and not self.cnn_checkpoint):  # the cnn feature with its checkpoint: when checked below
            from fer_features.torch_utils import resolve_device

            resolve_device(self.cnn_params.get("device", "auto"))  # a missing GPU, before any data is read
        if self.pretrained and not self.cnn_checkpoint:
            raise ValueError(f"the {self.clf} classifier is made of trained networks: give them as --cnn-checkpoint a.pt+b.pt")
        for path in self.checkpoints():
            if not Path(path).is_file():
                raise FileNotFoundError(f"{path}: no such CNN checkpoint")
        if self.augment_shift and not self.augment:
            raise ValueError("--augment-shift needs --augment")
        if self.end_to_end and (self.augment or self.balance != "none"):
            what = "trains nothing (its networks are trained already)" if self.pretrained else "augments its own training"
            raise ValueError(f"--augment and --balance are for feature pipelines; the {self.clf} classifier {what}")
        if self.calibrate and self.end_to_end:
            own = " (it fits its own temperature on PublicTest)" if self.pretrained else ""
            raise ValueError(f"--calibrate is for feature pipelines, not the {self.clf} classifier{own}")
        if self.cnn_params.get("prior_correction") and not self.pretrained:
            raise ValueError("--prior-correction is for --clf cnn-ensemble (trained networks whose probabilities it corrects)")
        if self.cnn_params.get("precision") == "int8" and not self.end_to_end:
            raise ValueError(
                "--precision int8 is for --clf cnn and cnn-ensemble; for the cnn feature give --feature-param cnn.precision=int8"
            )
        if uses_cnn and not self.cnn_checkpoint:
            make_features(self.feature_names, params=self.feature_params)
            make_classifier(self.clf, class_weight=self.head_class_weight)
            pipe = None
        else:
            options = self._build_options(out)
            if self.end_to_end:
                pipe = build_pipeline(self.features, self.clf, **options)
            else:  # the union once: its extractors' copies fitted on a blank crop check them and give their widths
                union, widths = make_checked_features(self.feature_names, n_jobs=options.pop("n_jobs"), params=options.pop("feature_params"))
                pipe = feature_pipeline(union, self.clf, block_dims=widths, n_jobs=self.n_jobs, **options)
            if self.pretrained:  # its networks load, carry what the precision needs and agree on the classes
                pipe.named_steps["clf"].load_members()
        return pipe

    def plan(self, out: str | os.PathLike | None = None) -> TrainPlan:
        """Check the options once (:meth:`check`) and keep what was built: the plan :func:`train` runs.

        Parameters
        ----------
        out : path-like, optional
            Where the model goes.

        Returns
        -------
        TrainPlan

        Raises
        ------
        ValueError, FileNotFoundError
            As :meth:`check`.
        """
        return TrainPlan(self, self.check(out), None if out is None else Path(out))

    def plan_cv(self) -> TrainPlan:
        """:meth:`plan` for cross-validation (:meth:`check_cv`): what :func:`cross_validate_pipeline` runs."""
        return TrainPlan(self, self.check_cv())

    def checkpoints(self) -> list[str]:
        """The CNN checkpoints given: ``cnn_checkpoint``, split at ``+`` for a pretrained head."""
        if not self.cnn_checkpoint:
            return []
        if not self.pretrained:
            return [str(self.cnn_checkpoint)]
        from fer_features.cnn.ensemble import checkpoint_paths  # torch is imported on use only

        return checkpoint_paths(self.cnn_checkpoint)

    def check_cv(self):
        """:meth:`check` for cross-validation, which takes feature pipelines only.

        Raises
        ------
        ValueError
            Also for an end-to-end head (``cnn``), which ``fer train`` trains.
        """
        if self.end_to_end:
            raise ValueError(f"fer cv runs feature pipelines; the {self.clf} classifier is trained with `fer train --clf {self.clf}`")
        if self.calibrate:
            raise ValueError("calibrate fits a temperature on PublicTest, which cross-validation on Training does not use: it is for fer train")
        return self.check()

    def pipeline(self, cnn_checkpoint: str | os.PathLike | None = None, out: str | os.PathLike | None = None):
        """The unfitted pipeline, with ``cnn_checkpoint`` for the ``cnn`` feature if given."""
        from fer_features.training.pipelines import build_pipeline

        return build_pipeline(self.features, self.clf, **self._build_options(out, cnn_checkpoint))

    def _build_options(self, out=None, cnn_checkpoint=None) -> dict:
        feature_params = {k: dict(v) for k, v in self.feature_params.items()}
        checkpoint = cnn_checkpoint or self.cnn_checkpoint
        if checkpoint and not self.pretrained:
            feature_params.setdefault("cnn", {}).update(checkpoint=str(checkpoint), device=self.cnn_params.get("device", "auto"))
        clf_params = None
        if self.pretrained:
            inference = {k: self.cnn_params[k] for k in ("device", "precision", "tta", "prior_correction") if k in self.cnn_params}
            clf_params = {"checkpoints": "+".join(self.checkpoints()), **inference}
        elif self.end_to_end:
            resume = {"resume_path": str(Path(out).with_suffix(".resume.pt"))} if out is not None else {}
            clf_params = {**self.cnn_params, **resume}
        return dict(
            pca=self.pca,
            class_weight=self.head_class_weight,
            n_jobs=self.n_jobs,
            random_state=self.seed,
            memory=str(self.cache_dir) if self.cache_dir else None,
            feature_params=feature_params,
            clf_params=clf_params,
        )


@dataclass
class TrainPlan:
    """A training run's options, checked once, and the unfitted pipeline they give.

    Made by :meth:`TrainSettings.plan`; ``fer train`` checks its options into a plan before any
    data is read and hands the plan to :func:`train`, which runs it without checking again.

    Attributes
    ----------
    settings : TrainSettings
    pipeline : Pipeline or None
        Unfitted; None for the ``cnn`` feature without a checkpoint (that CNN is trained first).
    out : Path or None
        Where the model goes.
    """

    settings: TrainSettings
    pipeline: object
    out: Path | None = None
