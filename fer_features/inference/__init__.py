"""Inference: a trained model on photos, folders, videos and the webcam.

* :mod:`~fer_features.inference.recognizer`: :class:`~fer_features.inference.recognizer.Recognizer`,
  the one façade (model, detector, batch size, device);
* :mod:`~fer_features.inference.photos`: photos and folders → faces → probabilities, as rows;
* :mod:`~fer_features.inference.video`: videos and the webcam, frame by frame.
"""

from fer_features.inference.recognizer import Recognizer

__all__ = ["Recognizer"]
