"""fer-features: facial expression recognition with hand-crafted and learned features.

The package is a set of scikit-learn transformers and pipelines for classifying the
emotion on a face crop (FER2013 protocol: 7 classes, 48x48 grey crops), plus face
detection and alignment for ordinary photos, and a Typer CLI (``fer``).

Importing the package is cheap: torch and dlib are imported only where they are used.
"""

from fer_features.datasets import EMOTIONS, USAGES

__version__ = "0.1.0"

__all__ = ["EMOTIONS", "USAGES", "__version__"]
