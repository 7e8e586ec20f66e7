"""Faces in photos: image decoding, face detectors, dlib's landmarks, alignment to 48x48 crops.

The path of a photo: :func:`~fer_features.faces.images.decode_image` (bytes or a file → RGB,
with a pixel limit) → a detector of :data:`~fer_features.faces.detectors.DETECTORS` (boxes,
eye points) → :func:`~fer_features.faces.alignment.find_faces` (each face rotated, scaled and
cropped as FER2013's are); :func:`~fer_features.faces.alignment.faces_in` does it all for one
photo (a file, bytes or an array).
"""

from fer_features.faces.alignment import (
    Face,
    align_eyes,
    align_face,
    detect_faces,
    faces_in,
    find_faces,
    whole_image_face,
)
from fer_features.faces.detectors import DETECTORS, Detection, get_detector, list_detectors
from fer_features.faces.images import ImageError, decode_image, to_grey, to_rgb

__all__ = [
    "DETECTORS",
    "Detection",
    "Face",
    "ImageError",
    "align_eyes",
    "align_face",
    "decode_image",
    "detect_faces",
    "faces_in",
    "find_faces",
    "get_detector",
    "list_detectors",
    "to_grey",
    "to_rgb",
    "whole_image_face",
]
