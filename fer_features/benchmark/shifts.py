"""The shifts of the robustness benchmark: what a real photo does to a face, at 2-3 severities.

Eleven shifts, registered by name in :data:`SHIFTS` (the table is in
:mod:`fer_features.benchmark.robustness`): ten act on the 48x48 crops (rotation, blur, JPEG, low
resolution, brightness, contrast, gamma, noise, sunglasses, hand), and ``framing`` pastes the face
into a larger photo for the detector to find (:func:`framing_photos`). Every shift is seeded
(:func:`shift_rng`): the same seed, shift and severity give the same faces in every process.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from fer_features.config import IMAGE_SIZE


class RobustnessError(ValueError):
    """Bad input to the robustness benchmark: unknown shift, split or severity, or no faces."""


@dataclass(frozen=True)
class Shift:
    """One registered shift.

    Attributes
    ----------
    name : str
    levels : tuple
        The parameter of each severity (1-based: ``levels[severity - 1]``).
    describe : callable
        ``describe(level) -> str``, the severity in words with units.
    apply : callable or None
        ``apply(X, level, rng) -> X`` on ``(n, 48, 48)`` uint8 crops; None for ``framing``,
        which goes through the detector (:func:`framing_photos`).
    """

    name: str
    levels: tuple
    describe: Callable[[object], str]
    apply: Callable | None = None

    @property
    def severities(self) -> tuple[int, ...]:
        """``1 .. len(levels)``."""
        return tuple(range(1, len(self.levels) + 1))


# --------------------------------------------------------------------------- crop shifts


def _as_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def _signs(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.choice(np.array([-1.0, 1.0]), size=n)


def rotate(X: np.ndarray, degrees: float, rng: np.random.Generator) -> np.ndarray:
    """Rotate each crop about its centre by ``±degrees`` (sign drawn per face); edges replicated."""
    from scipy.ndimage import affine_transform

    out = np.empty_like(X)
    centre = (np.array(X.shape[1:], np.float64) - 1) / 2
    for i, (img, sign) in enumerate(zip(X, _signs(rng, len(X)))):
        if degrees == 0:
            out[i] = img
            continue
        a = np.deg2rad(sign * degrees)
        matrix = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])  # output (row, col) -> input
        offset = centre - matrix @ centre
        out[i] = _as_uint8(affine_transform(img.astype(np.float32), matrix, offset=offset, order=1, mode="nearest"))
    return out


def blur(X: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian blur of standard deviation ``sigma`` px (edges replicated)."""
    from scipy.ndimage import gaussian_filter

    if sigma == 0:
        return X.copy()
    return _as_uint8(gaussian_filter(X.astype(np.float32), sigma=(0, sigma, sigma), mode="nearest"))


def jpeg(X: np.ndarray, quality: int, rng: np.random.Generator) -> np.ndarray:
    """Encode each crop as JPEG at ``quality`` (Pillow, 4:2:0 irrelevant for grey) and decode it."""
    from PIL import Image

    out = np.empty_like(X)
    for i, img in enumerate(X):
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=int(quality))
        out[i] = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("L"))
    return out


def low_resolution(X: np.ndarray, side: int, rng: np.random.Generator) -> np.ndarray:
    """Shrink each crop to ``side`` px (area averaging) and enlarge it back (bilinear)."""
    from PIL import Image

    size = X.shape[1]
    out = np.empty_like(X)
    for i, img in enumerate(X):
        small = Image.fromarray(img).resize((side, side), Image.BOX)
        out[i] = np.asarray(small.resize((size, size), Image.BILINEAR))
    return out


def brightness(X: np.ndarray, delta: float, rng: np.random.Generator) -> np.ndarray:
    """Add ``±delta`` grey levels (sign drawn per face), clipped to 0..255."""
    return _as_uint8(X.astype(np.float32) + (_signs(rng, len(X)) * delta)[:, None, None])


def contrast(X: np.ndarray, factor: float, rng: np.random.Generator) -> np.ndarray:
    """Scale each crop's deviation from its own mean grey by ``factor`` (1 keeps it)."""
    x = X.astype(np.float32)
    mean = x.mean(axis=(1, 2), keepdims=True)
    return _as_uint8(mean + (x - mean) * factor)


def gamma(X: np.ndarray, g: float, rng: np.random.Generator) -> np.ndarray:
    """``255 * (x / 255) ** e`` with ``e = g`` (darker) or ``1 / g`` (lighter), drawn per face."""
    e = np.where(_signs(rng, len(X)) > 0, g, 1.0 / g)[:, None, None]
    return _as_uint8(255.0 * (X.astype(np.float64) / 255.0) ** e)


def noise(X: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Add Gaussian noise of standard deviation ``sigma`` grey levels, clipped to 0..255."""
    return _as_uint8(X.astype(np.float32) + rng.normal(0.0, sigma, X.shape).astype(np.float32))


def _box(cx: float, cy: float, w: int, h: int, size: int) -> tuple[slice, slice]:
    """Rows and columns of a ``w`` x ``h`` box centred on ``(cx, cy)``, clipped to the crop."""
    x0, y0 = int(round(cx - w / 2)), int(round(cy - h / 2))
    return slice(max(0, y0), min(size, y0 + h)), slice(max(0, x0), min(size, x0 + w))


def sunglasses_mask(n: int, lens: tuple[int, int], rng: np.random.Generator, size: int = IMAGE_SIZE) -> np.ndarray:
    """Where :func:`sunglasses` paints: two ``lens`` (width, height) px boxes on FER2013's eye centres
    (:data:`fer_features.faces.FER2013_EYES`), jittered ±1.5 px.

    Returns
    -------
    ndarray of shape (n, size, size), dtype bool
    """
    from fer_features.faces.alignment import FER2013_EYES

    mask = np.zeros((n, size, size), bool)
    jitter = rng.uniform(-1.5, 1.5, (n, 2))
    scale = size / IMAGE_SIZE
    for i in range(n):
        for ex, ey in FER2013_EYES:
            rows, cols = _box((ex + jitter[i, 0]) * scale, (ey + jitter[i, 1]) * scale, *(int(round(v * scale)) for v in lens), size)
            mask[i, rows, cols] = True
    return mask


def sunglasses(X: np.ndarray, lens: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Paint two dark lenses (grey 20) over the eyes (:func:`sunglasses_mask`)."""
    out = X.copy()
    out[sunglasses_mask(len(X), lens, rng, X.shape[1])] = 20
    return out


def hand_mask(n: int, block: tuple[int, int], rng: np.random.Generator, size: int = IMAGE_SIZE) -> np.ndarray:
    """Where :func:`hand` paints: a ``block`` (width, height) px box centred near (24, 38) px, jittered ±3 px.

    Returns
    -------
    ndarray of shape (n, size, size), dtype bool
    """
    mask = np.zeros((n, size, size), bool)
    jitter = rng.uniform(-3.0, 3.0, (n, 2))
    scale = size / IMAGE_SIZE
    for i in range(n):
        rows, cols = _box((24 + jitter[i, 0]) * scale, (38 + jitter[i, 1]) * scale, *(int(round(v * scale)) for v in block), size)
        mask[i, rows, cols] = True
    return mask


def hand(X: np.ndarray, block: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Cover mouth and chin with a skin-grey block (level 120-190 per face, shaded ±10 top to bottom)."""
    n, size = len(X), X.shape[1]
    mask = hand_mask(n, block, rng, size)
    level = rng.uniform(120, 190, n)
    shade = np.linspace(-10, 10, size, dtype=np.float32)[None, :, None]
    fill = _as_uint8(level[:, None, None] + shade + np.zeros((1, 1, size), np.float32))
    out = X.copy()
    out[mask] = fill[mask]
    return out


# --------------------------------------------------------------------------- framing (photos)


def _background(side: int, mean: float, rng: np.random.Generator) -> np.ndarray:
    """Smooth noise (an 8x8 grid of std 35 grey, bicubic-enlarged), a linear gradient (±40) and fine noise (std 3)."""
    from PIL import Image

    coarse = rng.normal(0, 35.0, (8, 8)).astype(np.float32)
    smooth = np.asarray(Image.fromarray(coarse, mode="F").resize((side, side), Image.BICUBIC), np.float32)
    a = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32) / side - 0.5
    gradient = 80.0 * (np.cos(a) * xx + np.sin(a) * yy)
    return mean + smooth + gradient + rng.normal(0, 3.0, (side, side)).astype(np.float32)


def framing_photos(
    X: np.ndarray, level: tuple[int, int], rng: np.random.Generator
) -> tuple[list[np.ndarray], np.ndarray]:
    """Each crop upsampled and pasted into a larger grey photo, at a seeded position.

    Parameters
    ----------
    X : ndarray of shape (n, 48, 48), dtype uint8
    level : (int, int)
        ``(face, photo)``: side of the pasted face and of the square photo, in pixels.
    rng : numpy.random.Generator

    Returns
    -------
    photos : list of ndarray of shape (photo, photo), dtype uint8
        The face (bicubic, Pillow) blended into the background (:func:`_background`, around the
        grey of the crop's border) with an alpha that ramps from 0 to 1 over its outer 10 %.
    boxes : ndarray of shape (n, 4), dtype int64
        ``(left, top, right, bottom)`` of the pasted face in each photo.

    Raises
    ------
    ValueError
        If the face does not fit the photo.
    """
    from PIL import Image

    face, side = (int(v) for v in level)
    if face > side:
        raise ValueError(f"a {face}-pixel face does not fit a {side}-pixel photo")
    ramp = np.clip(np.minimum(np.arange(face), np.arange(face)[::-1]) / max(1.0, 0.1 * face), 0, 1).astype(np.float32)
    alpha = np.minimum(ramp[:, None], ramp[None, :])
    photos, boxes = [], np.zeros((len(X), 4), np.int64)
    for i, crop in enumerate(X):
        big = np.asarray(Image.fromarray(crop).resize((face, face), Image.BICUBIC), np.float32)
        border = float(np.concatenate([crop[0], crop[-1], crop[:, 0], crop[:, -1]]).mean())
        photo = _background(side, border, rng)
        x0, y0 = (int(v) for v in rng.integers(0, side - face + 1, 2))
        region = photo[y0 : y0 + face, x0 : x0 + face]
        photo[y0 : y0 + face, x0 : x0 + face] = alpha * big + (1 - alpha) * region
        photos.append(_as_uint8(photo))
        boxes[i] = (x0, y0, x0 + face, y0 + face)
    return photos, boxes


# --------------------------------------------------------------------------- registry

SHIFTS: dict[str, Shift] = {
    s.name: s
    for s in (
        Shift("framing", ((160, 320), (128, 512), (112, 640)), lambda v: f"face {v[0]} px in a {v[1]} px photo"),
        Shift("rotation", (10, 18, 25), lambda v: f"±{v}°", rotate),
        Shift("blur", (0.8, 1.4, 2.0), lambda v: f"sigma {v} px", blur),
        Shift("jpeg", (40, 30, 20), lambda v: f"quality {v}", jpeg),
        Shift("low_resolution", (24, 16), lambda v: f"{v} px, upsampled", low_resolution),
        Shift("brightness", (40, 70, 100), lambda v: f"±{v} grey levels", brightness),
        Shift("contrast", (0.5, 0.35, 0.2), lambda v: f"x{v}", contrast),
        Shift("gamma", (1.5, 2.0, 2.8), lambda v: f"gamma {v} or 1/{v}", gamma),
        Shift("noise", (10, 20, 30), lambda v: f"sigma {v} grey levels", noise),
        Shift("sunglasses", ((10, 7), (13, 9), (16, 11)), lambda v: f"two {v[0]}x{v[1]} px lenses", sunglasses),
        Shift("hand", ((20, 12), (26, 16), (32, 20)), lambda v: f"{v[0]}x{v[1]} px block", hand),
    )
}

#: The splits the benchmark scores: PublicTest selects, PrivateTest reports.
SPLITS: tuple[str, ...] = ("PublicTest", "PrivateTest")


def list_shifts() -> dict[str, list[str]]:
    """Shift names and the description of each severity."""
    return {name: [s.describe(v) for v in s.levels] for name, s in SHIFTS.items()}


def shift_rng(seed: int, shift: str, severity: int) -> np.random.Generator:
    """The generator of one shift at one severity: the same faces get the same shift in every run and order."""
    return np.random.default_rng([int(seed), zlib.crc32(shift.encode()), int(severity)])


def apply_shift(X: np.ndarray, shift: str, severity: int, *, seed: int = 0) -> np.ndarray:
    """Shift face crops at one severity, deterministically.

    Parameters
    ----------
    X : ndarray of shape (n_samples, 48, 48), dtype uint8
        Grey face crops (another square side works too; the occlusions scale with it).
    shift : str
        A crop shift of :data:`SHIFTS` (not ``'framing'``, which makes photos:
        :func:`framing_photos`).
    severity : int
        ``1 .. len(SHIFTS[shift].levels)``; 0 returns a copy of ``X``.
    seed : int, default=0
        With ``shift`` and ``severity``, seeds :func:`shift_rng`.

    Returns
    -------
    ndarray of shape (n_samples, 48, 48), dtype uint8

    Raises
    ------
    RobustnessError
        For an unknown shift, ``'framing'``, a severity out of range, or ``X`` not uint8 of shape
        ``(n, side, side)``.
    """
    spec = _shift(shift)
    if spec.apply is None:
        raise RobustnessError(f"{shift!r} goes through the detector: use framing_photos, not apply_shift")
    X = np.asarray(X)
    if X.dtype != np.uint8 or X.ndim != 3 or X.shape[1] != X.shape[2]:
        raise RobustnessError(f"expected face crops of shape (n, 48, 48), dtype uint8; got {X.shape}, {X.dtype}")
    if severity == 0:
        return X.copy()
    _check_severity(spec, severity)
    return spec.apply(X, spec.levels[severity - 1], shift_rng(seed, shift, severity))


def _shift(name: str) -> Shift:
    if name not in SHIFTS:
        raise RobustnessError(f"unknown shift {name!r}; valid shifts: {', '.join(SHIFTS)}")
    return SHIFTS[name]


def _check_severity(spec: Shift, severity: int) -> None:
    if severity not in spec.severities:
        raise RobustnessError(f"shift {spec.name!r} has severities 1 to {len(spec.levels)}, got {severity!r}")


def parse_shifts(names: Sequence[str] | str | None) -> list[str]:
    """Shift names from a list or a comma-separated string (None or empty: all, in registry order).

    Raises
    ------
    RobustnessError
        For an unknown name (the message lists the valid ones).
    """
    if names is None:
        return list(SHIFTS)
    if isinstance(names, str):
        names = [names]
    out = [n.strip() for item in names for n in str(item).split(",") if n.strip()]
    for name in out:
        _shift(name)
    return list(dict.fromkeys(out)) or list(SHIFTS)
