"""Reading image files and uploads with a pixel limit: one decoding path for the CLI, the loaders and the server.

Every image the project reads from outside (a photo given to ``fer predict``, a labelled photo,
a FER2013 member, an upload to ``fer serve``) goes through :func:`decode_image`. It checks the
pixel count from the header, before any pixel is decoded, so a small file that claims a huge
image (a decompression bomb) costs nothing, and it turns every failure of the decoder into one
of the :class:`ImageError` subclasses below, whose message names the file and the problem.
"""

from __future__ import annotations

import io
import os
import struct
import warnings
from pathlib import Path

import numpy as np

#: Largest image read by default, in pixels (width x height): 25 megapixels, e.g. 6000x4000 is
#: 24 MP. ``$FER_MAX_PIXELS`` or the commands' ``--max-pixels`` raise (or lower) it.
DEFAULT_MAX_PIXELS = 25_000_000

#: What Pillow's decoders raise for malformed data (seen in the fuzz tests of tests/faces/test_images.py).
_DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    KeyError,
    TypeError,
    struct.error,
    ZeroDivisionError,
    OverflowError,
)


class ImageError(ValueError):
    """An image cannot be read; the message names the file (or upload) and the problem."""


class EmptyImageError(ImageError):
    """The file or upload has no bytes."""


class NotAnImageError(ImageError):
    """The data is not in any image format Pillow recognises."""


class TooManyPixelsError(ImageError):
    """The image has more pixels than the limit (read from its header, before decoding)."""


class CorruptImageError(ImageError):
    """The header was recognised, but the data is truncated, corrupt or of an unsupported kind."""


def default_max_pixels() -> int:
    """``$FER_MAX_PIXELS`` if set (a positive integer), else :data:`DEFAULT_MAX_PIXELS`.

    Raises
    ------
    ValueError
        If ``$FER_MAX_PIXELS`` is set but is not a positive integer.
    """
    raw = os.environ.get("FER_MAX_PIXELS", "").replace("_", "").strip()
    if not raw:
        return DEFAULT_MAX_PIXELS
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"$FER_MAX_PIXELS must be a positive integer (pixels), got {os.environ['FER_MAX_PIXELS']!r}")
    return int(raw)


def decode_image(
    source: bytes | str | os.PathLike,
    *,
    max_pixels: int | None = None,
    name: str | None = None,
    mode: str = "RGB",
) -> np.ndarray:
    """Decode an image file or its bytes, refusing what is not a sound image under the pixel limit.

    Parameters
    ----------
    source : bytes or path-like
        The file's content, or its path.
    max_pixels : int, optional
        Largest ``width * height`` accepted; default :func:`default_max_pixels`.
    name : str, optional
        How messages name the image; default the path, or ``"image"`` for bytes.
    mode : {'RGB', 'L'}, default='RGB'
        ``'RGB'``: EXIF orientation applied, grey, palette, RGBA (on white), 16-bit and float
        images converted by :func:`fer_features.faces.images.to_rgb`. ``'L'``: Pillow's plain grey
        conversion, no EXIF rotation (how FER2013's crops are read).

    Returns
    -------
    image : ndarray of shape (height, width, 3) for 'RGB' or (height, width) for 'L', dtype uint8

    Raises
    ------
    FileNotFoundError
        If ``source`` is a path that does not exist.
    EmptyImageError
        For no bytes.
    NotAnImageError
        When Pillow recognises no image format.
    TooManyPixelsError
        Over ``max_pixels`` (from the header, nothing decoded), or over Pillow's own
        decompression-bomb limit.
    CorruptImageError
        For truncated or corrupt data, or an image mode that cannot be converted.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    from fer_features.faces.images import to_rgb

    if mode not in ("RGB", "L"):
        raise ValueError(f"mode must be 'RGB' or 'L', got {mode!r}")
    limit = default_max_pixels() if max_pixels is None else int(max_pixels)
    if isinstance(source, (bytes, bytearray, memoryview)):
        label = name or "image"
        data = bytes(source)
        if not data:
            raise EmptyImageError(f"{label}: empty (0 bytes): send an image (JPEG, PNG, …)")
        fp = io.BytesIO(data)
        head = data[:16]
        size = len(data)
    else:
        path = Path(source)
        label = name or str(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such file")
        size = path.stat().st_size
        if size == 0:
            raise EmptyImageError(f"{label}: empty file (0 bytes)")
        fp = open(path, "rb")  # noqa: SIM115 - closed below, once the pixels are decoded
        head = fp.read(16)
        fp.seek(0)
    too_many = f"the limit is {limit:,} pixels (raise it with --max-pixels or $FER_MAX_PIXELS)"
    with fp, warnings.catch_warnings():
        # the limit is checked here; Pillow's warning would only repeat it for a raised limit
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            im = Image.open(fp)
        except UnidentifiedImageError:
            raise NotAnImageError(f"{label}: not an image Pillow can read ({size:,} bytes starting {head!r})") from None
        except Image.DecompressionBombError as exc:  # over twice Pillow's own limit: refused in open()
            raise TooManyPixelsError(f"{label}: {_bomb_message(exc)}; {too_many}") from None
        except _DECODE_ERRORS as exc:
            raise CorruptImageError(f"{label}: corrupt image header ({exc.__class__.__name__}: {exc})") from None
        width, height = im.size
        if width * height > limit:
            raise TooManyPixelsError(f"{label}: image is {width}x{height} = {width * height:,} pixels; {too_many}")
        if width <= 0 or height <= 0:
            raise CorruptImageError(f"{label}: image has no pixels ({width}x{height})")
        try:
            im.load()
            if mode == "L":
                return np.asarray(im.convert("L"))
            return to_rgb(ImageOps.exif_transpose(im))
        except Image.DecompressionBombError as exc:
            raise TooManyPixelsError(f"{label}: {_bomb_message(exc)}; {too_many}") from None
        except _DECODE_ERRORS as exc:
            what = im.format or "image"
            raise CorruptImageError(f"{label}: {what} data is truncated or corrupt ({exc.__class__.__name__}: {exc})") from None


def _bomb_message(exc: Exception) -> str:
    """Pillow's decompression-bomb error as ``image has N pixels`` (Pillow says "Image size (N pixels) exceeds …")."""
    import re

    found = re.search(r"\((\d+) pixels\)", str(exc))
    return f"image has {int(found.group(1)):,} pixels" if found else str(exc).rstrip(".")


def to_rgb(image) -> np.ndarray:
    """Convert a PIL image or an array to ``(height, width, 3)`` uint8 RGB.

    Arrays may be ``(h, w)`` grey, ``(h, w, 3)`` RGB or ``(h, w, 4)`` RGBA, of any integer
    dtype (uint16 and Pillow's 16-bit modes scaled by 1/257; wider integers by 1/257 when they fit
    in 16 bits, else by their maximum; values up to 255 kept) or float in 0..1.
    """
    from PIL import Image

    if isinstance(image, Image.Image):
        if image.mode.startswith("I;16"):
            image = np.asarray(image).astype(np.uint16)
        elif image.mode in ("I", "F"):
            image = np.asarray(image)
        elif image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
            rgba = image.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"))
        else:
            return np.asarray(image.convert("RGB"))
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        if np.issubdtype(arr.dtype, np.floating):
            arr = np.clip(arr * 255.0 if arr.max() <= 1.0 else arr, 0, 255).round().astype(np.uint8)
        elif arr.dtype == np.uint16:  # 16-bit: full range 0..65535
            arr = (arr.astype(np.float64) / 257.0).round().astype(np.uint8)
        elif arr.max() > 255:  # 32-bit integers of unknown range: 16-bit if they fit, else by the maximum
            top = 65535.0 if arr.max() <= 65535 else float(arr.max())
            arr = (np.clip(arr, 0, None).astype(np.float64) / top * 255).round().astype(np.uint8)
        else:
            arr = np.clip(arr, 0, 255).astype(np.uint8)
    if arr.ndim == 2:
        return np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim == 3 and arr.shape[2] == 4:
        alpha = arr[:, :, 3:4].astype(np.float32) / 255.0
        return (arr[:, :, :3] * alpha + 255.0 * (1.0 - alpha)).round().astype(np.uint8)
    if arr.ndim == 3 and arr.shape[2] == 3:
        return np.ascontiguousarray(arr)
    raise ImageError(f"unsupported image array of shape {arr.shape}")


def to_grey(rgb: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma of an RGB image, ``(h, w)`` uint8 (as PIL's ``convert('L')``, which made FER2013's grey)."""
    if rgb.ndim == 2:
        return rgb
    weights = np.array([0.299, 0.587, 0.114], np.float32)
    return np.clip(rgb[..., :3].astype(np.float32) @ weights, 0, 255).round().astype(np.uint8)
