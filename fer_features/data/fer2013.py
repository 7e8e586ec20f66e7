"""Loading FER2013 into one in-memory form, whatever container it comes in.

Three containers are read, and all give the same :class:`FERDataset`:

* the image-folder zip (Kaggle ``msambare/fer2013`` layout): ``train/<emotion>/*.jpg`` and
  ``test/<emotion>/*.jpg``, the usage split taken from the file-name prefix
  (``Training_``, ``PublicTest_``, ``PrivateTest_``);
* the same layout extracted into a folder;
* the original challenge file ``fer2013.csv`` with columns ``emotion,pixels,Usage``.

Decoded arrays are cached as ``.npz`` under :func:`default_cache_dir`, keyed by the source's
path, size and modification time, so a second load of all 35,887 images takes about a second.

References
----------
.. [1] Goodfellow, I. J., et al. "Challenges in representation learning: A report on three
       machine learning contests." ICONIP 2013. :doi:`10.1007/978-3-642-42051-1_16`
"""

from __future__ import annotations

import hashlib
import lzma
import os
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fer_features.config import CACHE_VERSION, EMOTIONS, IMAGE_SIZE, IMAGE_SUFFIXES, USAGES, default_cache_dir

_IMAGE_SUFFIXES = set(IMAGE_SUFFIXES)
# Folder name of the split -> usage when the file name carries no usage prefix.
_SPLIT_FOLDER_USAGE = {
    "train": "Training",
    "training": "Training",
    "val": "PublicTest",
    "valid": "PublicTest",
    "validation": "PublicTest",
    "publictest": "PublicTest",
    "test": "PrivateTest",
    "privatetest": "PrivateTest",
}


class DataError(ValueError):
    """A data file is missing, malformed or not in a supported layout.

    The message always names the offending file (and line or archive member) and the problem.
    """


@dataclass(frozen=True)
class FERDataset:
    """FER2013-style data decoded into arrays.

    Attributes
    ----------
    X : ndarray of shape (n_samples, 48, 48), dtype uint8
        Grey face crops.
    y : ndarray of shape (n_samples,), dtype int64
        Labels in FER2013 order, indices into :data:`EMOTIONS`.
    usage : ndarray of shape (n_samples,), dtype str
        One of :data:`USAGES` per image.
    names : ndarray of shape (n_samples,), dtype str
        Where each image came from (archive member, file path relative to the root, or
        ``"line N"`` of a CSV).
    source : str
        The path the data was loaded from.
    fingerprint : str
        SHA-256 of the decoded pixels, labels and usages: the same data gives the same
        fingerprint whatever its container or location.
    skipped : list of (str, str)
        ``(name, problem)`` for each file left out with ``skip_bad=True``.
    classes : tuple of str, default=EMOTIONS
        Class names that ``y`` indexes: :data:`EMOTIONS`, or :data:`EMOTIONS8` for FERPlus
        with contempt.
    soft : ndarray of shape (n_samples, n_classes), dtype float32, or None
        Per-image label distribution (FERPlus ``label_mode='probability'``: annotator votes,
        rows summing to 1); ``None`` for hard labels only.
    """

    X: np.ndarray
    y: np.ndarray
    usage: np.ndarray
    names: np.ndarray
    source: str
    fingerprint: str
    skipped: list[tuple[str, str]] = field(default_factory=list)
    classes: tuple[str, ...] = EMOTIONS
    soft: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.y)

    @property
    def labels(self) -> np.ndarray:
        """Emotion names, ndarray of shape (n_samples,), dtype str."""
        return np.asarray(self.classes)[self.y]

    def split(self, usage: str) -> tuple[np.ndarray, np.ndarray]:
        """Images and emotion names of one usage split.

        Parameters
        ----------
        usage : {'Training', 'PublicTest', 'PrivateTest'}

        Returns
        -------
        X : ndarray of shape (n_split, 48, 48), dtype uint8
        labels : ndarray of shape (n_split,), dtype str
            Emotion names (what the pipelines are fitted on).

        Raises
        ------
        ValueError
            If ``usage`` is not one of :data:`USAGES`.
        """
        if usage not in USAGES:
            raise ValueError(f"unknown split {usage!r}; expected one of {', '.join(USAGES)}")
        mask = self.usage == usage
        return self.X[mask], self.labels[mask]

    def counts(self) -> dict[str, dict[str, int]]:
        """Number of images per usage split and emotion: ``{usage: {emotion: count}}``."""
        return {
            u: {e: int(np.sum((self.usage == u) & (self.y == i))) for i, e in enumerate(self.classes)}
            for u in USAGES
        }

    def subset(self, index: np.ndarray) -> FERDataset:
        """A dataset holding only the images at ``index`` (integer or boolean array)."""
        X, y, usage, names = self.X[index], self.y[index], self.usage[index], self.names[index]
        soft = None if self.soft is None else self.soft[index]
        return FERDataset(
            X, y, usage, names, self.source, _fingerprint(X, y, usage, soft), self.skipped, self.classes, soft
        )


def load_fer2013(
    path: str | os.PathLike,
    *,
    skip_bad: bool = False,
    cache: bool = True,
    cache_dir: str | os.PathLike | None = None,
) -> FERDataset:
    """Load FER2013 from its zip, an extracted image folder, or the challenge CSV.

    Parameters
    ----------
    path : str or path-like
        ``fer2013.zip`` (image-folder layout), the folder it extracts to (the one holding
        ``train/`` and ``test/``, or a folder with a single such folder inside), or
        ``fer2013.csv`` (columns ``emotion,pixels,Usage``).
    skip_bad : bool, default=False
        If False, the first bad file raises :class:`DataError`. If True, bad files (not an
        image, corrupt, wrong size, bad pixel string, unknown label) are left out and listed
        in ``FERDataset.skipped``. A source with an unknown emotion folder or missing CSV
        columns is an error either way.
    cache : bool, default=True
        Read and write the decoded arrays under ``cache_dir``.
    cache_dir : str or path-like, optional
        Defaults to :func:`default_cache_dir`.

    Returns
    -------
    FERDataset
        ``X`` uint8 ``(n, 48, 48)``, ``y`` int64 in FER2013 order, ``usage`` per image.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    DataError
        If the source is not one of the layouts above or a file in it is bad; the message
        names the file and the problem.

    Examples
    --------
    >>> data = load_fer2013("../shared/data/fer2013.zip")  # doctest: +SKIP
    >>> X_train, y_train = data.split("Training")          # doctest: +SKIP
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    kind = _source_kind(path)
    cache_file = None
    if cache:
        cache_file = Path(cache_dir or default_cache_dir()) / f"fer2013-{_cache_key(path, kind, skip_bad)}.npz"
        cached = _read_cache(cache_file, path)
        if cached is not None:
            return cached

    if kind == "csv":
        X, y, usage, names, skipped = _read_csv(path, skip_bad)
    else:
        members = _zip_members(path) if kind == "zip" else _folder_members(path)
        X, y, usage, names, skipped = _decode_members(path, members, skip_bad)
    if len(y) == 0:
        raise DataError(f"{path}: no images found")
    data = FERDataset(X, y, usage, names, str(path), _fingerprint(X, y, usage), skipped)
    if cache_file is not None:
        _write_cache(cache_file, data)
    return data


# --------------------------------------------------------------------------- sources


#: Compression suffixes pandas infers from a path (``compression="infer"``), after ``.csv``.
CSV_COMPRESSIONS = (".gz", ".bz2", ".xz", ".zip", ".zst")


def is_csv_path(path: str | os.PathLike) -> bool:
    """True for ``*.csv`` and a CSV compressed as pandas reads it (``*.csv.gz``, ``.bz2``, ``.xz``,
    ``.zip``, ``.zst``), told from the file name alone."""
    name = Path(path).name.lower()
    return name.endswith(".csv") or any(name.endswith(".csv" + c) for c in CSV_COMPRESSIONS)


def _source_kind(path: Path) -> str:
    if path.is_dir():
        return "folder"
    if is_csv_path(path):  # before the zip test: fer2013.csv.zip is a zip holding one CSV
        return "csv"
    if zipfile.is_zipfile(path):
        return "zip"
    raise DataError(
        f"{path}: not a FER2013 source; expected a .zip of train/<emotion>/*.jpg, "
        "the folder it extracts to, or fer2013.csv (also compressed: .csv.gz, .csv.bz2, .csv.xz, .csv.zip)"
    )


def _zip_members(path: Path) -> Iterator[tuple[str, callable]]:
    zf = zipfile.ZipFile(path)
    for info in sorted(zf.infolist(), key=lambda i: i.filename):
        if info.is_dir() or "__MACOSX" in info.filename or Path(info.filename).name.startswith("."):
            continue
        yield info.filename, (lambda info=info: zf.read(info))


def _folder_members(root: Path) -> Iterator[tuple[str, callable]]:
    files = sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))
    if not files:
        raise DataError(f"{root}: the folder holds no files")
    for p in files:
        yield p.relative_to(root).as_posix(), p.read_bytes


def _parse_member_name(name: str) -> tuple[str, str] | None:
    """``.../<split>/<emotion>/<file>`` -> (usage, emotion); None for files to ignore."""
    parts = name.split("/")
    if Path(name).suffix.lower() not in _IMAGE_SUFFIXES:
        return None
    if len(parts) < 3:
        raise DataError(f"{name}: expected <split>/<emotion>/<file>, e.g. train/happy/Training_1.jpg")
    split, emotion, file = parts[-3].lower(), parts[-2].lower(), parts[-1]
    if emotion not in EMOTIONS:
        raise DataError(
            f"{name}: unknown emotion folder {parts[-2]!r}; expected one of {', '.join(EMOTIONS)}"
        )
    prefix = file.split("_", 1)[0]
    if prefix in USAGES:
        return prefix, emotion
    if split in _SPLIT_FOLDER_USAGE:
        return _SPLIT_FOLDER_USAGE[split], emotion
    raise DataError(
        f"{name}: cannot tell the usage split: the file name has no Training_/PublicTest_/"
        f"PrivateTest_ prefix and the folder {parts[-3]!r} is not one of {', '.join(sorted(_SPLIT_FOLDER_USAGE))}"
    )


def _decode_image(data: bytes) -> np.ndarray:
    from fer_features.faces.images import ImageError, decode_image

    try:
        # a FER2013 member is 48x48: one claiming over 64 times that (147,456 pixels) is refused from its header
        arr = decode_image(data, max_pixels=64 * IMAGE_SIZE * IMAGE_SIZE, name="member", mode="L")
    except ImageError as exc:
        raise DataError(f"not a readable image ({exc.__class__.__name__}: {str(exc).removeprefix('member: ')})") from None
    if arr.shape != (IMAGE_SIZE, IMAGE_SIZE):
        raise DataError(f"wrong size: expected {IMAGE_SIZE}x{IMAGE_SIZE} pixels, got {arr.shape[1]}x{arr.shape[0]}")
    return arr


def _decode_members(source: Path, members, skip_bad: bool):
    images, labels, usages, names, skipped = [], [], [], [], []
    for name, read in members:
        parsed = _parse_member_name(name)
        if parsed is None:
            continue
        usage, emotion = parsed
        try:
            arr = _decode_image(read())
        except DataError as exc:
            if not skip_bad:
                raise DataError(f"{source}: {name}: {exc}") from None
            skipped.append((name, str(exc)))
            continue
        images.append(arr)
        labels.append(EMOTIONS.index(emotion))
        usages.append(usage)
        names.append(name)
    return _as_arrays(images, labels, usages, names, skipped)


def _read_csv(path: Path, skip_bad: bool):
    import pandas as pd

    try:  # compression (gz, bz2, xz, zip, zst) is inferred from the suffix
        df = pd.read_csv(path, dtype={"pixels": str, "Usage": str})
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError, OSError, EOFError, ValueError, zipfile.BadZipFile, lzma.LZMAError, zlib.error) as exc:
        raise DataError(f"{path}: not a readable CSV ({exc})") from None
    missing = [c for c in ("emotion", "pixels", "Usage") if c not in df.columns]
    if missing:
        raise DataError(
            f"{path}: missing column(s) {', '.join(missing)}; a FER2013 CSV has emotion,pixels,Usage "
            f"(found {', '.join(map(str, df.columns))})"
        )
    n_pixels = IMAGE_SIZE * IMAGE_SIZE
    # One non-numeric cell makes pandas read the whole column as text: compare numerically.
    numeric = pd.to_numeric(df["emotion"], errors="coerce")
    images, labels, usages, names, skipped = [], [], [], [], []
    for row, (emotion, value, pixels, usage) in enumerate(zip(df["emotion"], numeric, df["pixels"], df["Usage"])):
        line = f"line {row + 2}"  # 1-based, after the header
        problem = None
        if not (np.isfinite(value) and value == int(value) and 0 <= value < len(EMOTIONS)):
            problem = f"emotion {emotion!r} is not an integer label 0..{len(EMOTIONS) - 1}"
        else:
            label = int(value)
        if problem is None and usage not in USAGES:
            problem = f"Usage {usage!r} is not one of {', '.join(USAGES)}"
        if problem is None:
            try:
                values = np.array(str(pixels).split(), dtype=np.int64)
            except ValueError:
                values = None
            if values is None or len(values) != n_pixels:
                got = "non-numeric values" if values is None else f"{len(values)} values"
                problem = f"pixels must be {n_pixels} space-separated integers, got {got}"
            elif values.min() < 0 or values.max() > 255:
                problem = "pixel values must be in 0..255"
        if problem is not None:
            if not skip_bad:
                raise DataError(f"{path}: {line}: {problem}")
            skipped.append((line, problem))
            continue
        images.append(values.astype(np.uint8).reshape(IMAGE_SIZE, IMAGE_SIZE))
        labels.append(label)
        usages.append(usage)
        names.append(line)
    return _as_arrays(images, labels, usages, names, skipped)


def _as_arrays(images, labels, usages, names, skipped):
    """The decoded lists as the loader's arrays (an empty ``(0, 48, 48)`` X when nothing was kept)."""
    X = np.stack(images) if images else np.zeros((0, IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    return X, np.asarray(labels, np.int64), np.asarray(usages, dtype="<U11"), np.asarray(names), skipped


# --------------------------------------------------------------------------- cache


def _fingerprint(X: np.ndarray, y: np.ndarray, usage: np.ndarray, soft: np.ndarray | None = None) -> str:
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(X).tobytes())
    h.update(np.asarray(y, np.int64).tobytes())
    h.update("\n".join(usage.tolist()).encode())
    if soft is not None:
        h.update(np.ascontiguousarray(soft, np.float32).tobytes())
    return h.hexdigest()


def _cache_key(path: Path, kind: str, skip_bad: bool) -> str:
    h = hashlib.sha256(f"{CACHE_VERSION}|{path.resolve()}|{kind}|{skip_bad}".encode())
    if kind == "folder":
        for p in sorted(path.rglob("*")):
            if p.is_file():
                st = p.stat()
                h.update(f"{p.relative_to(path)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    else:
        st = path.stat()
        h.update(f"{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()[:20]


def _read_cache(cache_file: Path, path: Path) -> FERDataset | None:
    if not cache_file.exists():
        return None
    try:
        with np.load(cache_file, allow_pickle=False) as z:
            skipped = list(zip(z["skipped_names"].tolist(), z["skipped_problems"].tolist()))
            return FERDataset(
                z["X"], z["y"], z["usage"], z["names"], str(path), str(z["fingerprint"]), skipped
            )
    except (OSError, KeyError, ValueError):
        return None  # a broken cache is rebuilt, never trusted


def _write_cache(cache_file: Path, data: FERDataset) -> None:
    from fer_features.persist.outputs import atomic_path

    try:
        with atomic_path(cache_file) as tmp, open(tmp, "wb") as fh:
            np.savez(
                fh,
                X=data.X,
                y=data.y,
                usage=data.usage,
                names=data.names,
                fingerprint=np.asarray(data.fingerprint),
                skipped_names=np.asarray([s[0] for s in data.skipped], dtype=str),
                skipped_problems=np.asarray([s[1] for s in data.skipped], dtype=str),
            )
    except OSError:
        pass  # caching is an optimisation; an unwritable cache folder must not fail a load
