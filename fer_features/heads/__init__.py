"""Classifier heads: the registry of heads by name, the project's own estimators and kernel maps.

* :mod:`~fer_features.heads.registry`: :data:`~fer_features.heads.registry.HEADS` and
  :func:`~fer_features.heads.registry.make_classifier` (``fer train --clf NAME``);
* :mod:`~fer_features.heads.estimators`: the Nyström, MLP and local-SVM heads, and the branch
  union of ``stacked-svm``;
* :mod:`~fer_features.heads.kernels`: explicit feature maps of the histogram kernels.
"""

from fer_features.heads.estimators import BranchUnion, LocalSVMClassifier, MLPHead, NystroemClassifier
from fer_features.heads.kernels import HistogramKernelMap
from fer_features.heads.registry import HEADS, list_classifiers, make_classifier, register_classifier

__all__ = [
    "HEADS",
    "BranchUnion",
    "HistogramKernelMap",
    "LocalSVMClassifier",
    "MLPHead",
    "NystroemClassifier",
    "list_classifiers",
    "make_classifier",
    "register_classifier",
]
