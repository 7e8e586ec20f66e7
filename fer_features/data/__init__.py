"""Data: the sources a data set is read from, and what is done to it before training.

* :mod:`~fer_features.data.sources`: one entry point, :func:`~fer_features.data.sources.load_dataset`,
  for every format (the format detected from the path), and the data limit of quick runs;
* :mod:`~fer_features.data.fer2013`: the FER2013 zip, CSV and image folders, and :class:`FERDataset`;
* :mod:`~fer_features.data.ferplus`: FERPlus's relabelling (majority or vote distribution);
* :mod:`~fer_features.data.photos`: folders of labelled photos, their faces found and aligned;
* :mod:`~fer_features.data.resampling`: mirrored, shifted and oversampled Training faces;
* :mod:`~fer_features.data.inspection`: ``fer data inspect``'s counts and plots.
"""

from fer_features.data.fer2013 import DataError, FERDataset, load_fer2013
from fer_features.data.sources import load_dataset

__all__ = ["DataError", "FERDataset", "load_dataset", "load_fer2013"]
