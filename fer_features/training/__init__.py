"""Training: options checked into a plan, the run that fits and scores a pipeline, cross-validation.

``fer train``, ``fer cv`` and ``fer benchmark`` are thin shells over this package: they parse
options, call :func:`~fer_features.training.run.train`,
:func:`~fer_features.training.cv.cross_validate_pipeline` or
:func:`~fer_features.training.cnn.train_cnn_checkpoint`, and print. A script does the same in a
few lines::

    from fer_features.training import train
    pipe, card = train("../shared/data/fer2013.csv.gz", "hog", "logreg", limit=300, out="m.skops")
    card.metrics["PrivateTest"]["accuracy"]

* :mod:`~fer_features.training.settings`: :class:`TrainSettings` → :class:`TrainPlan`, checked once;
* :mod:`~fer_features.training.pipelines`: a feature spec and a head → one scikit-learn Pipeline;
* :mod:`~fer_features.training.run`: :func:`train` (fit, calibrate, score, save with a card);
* :mod:`~fer_features.training.cnn`: the CNN's part of a run;
* :mod:`~fer_features.training.cv`: :func:`cross_validate_pipeline`;
* :mod:`~fer_features.training.evaluation`: accuracy, macro-F1 and the confusion matrix of a split.

Progress is reported to an optional ``on_event(kind, info)`` callback (the CLI draws rich bars
from it); the events are listed in :func:`~fer_features.training.run.train`.
"""

from fer_features.persist.cards import ModelCard
from fer_features.training.cv import cross_validate_pipeline
from fer_features.training.pipelines import build_pipeline
from fer_features.training.run import train
from fer_features.training.settings import TrainPlan, TrainSettings

__all__ = ["ModelCard", "TrainPlan", "TrainSettings", "build_pipeline", "cross_validate_pipeline", "train"]
