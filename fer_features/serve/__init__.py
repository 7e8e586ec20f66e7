"""``fer serve``: a FastAPI app with a JSON prediction API and a browser demo (upload, webcam, FaceMatch).

FastAPI and uvicorn are imported only here, never by the rest of the package, so ``fer --help``
and the training commands do not need them.
"""

from fer_features.serve.app import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, UploadError, create_app, decode_upload
from fer_features.serve.batching import DynamicBatcher

__all__ = ["DEFAULT_MAX_BYTES", "DEFAULT_MAX_PIXELS", "DynamicBatcher", "UploadError", "create_app", "decode_upload"]
