"""Folders of labelled photos → aligned 48x48 face crops in the FER2013 schema.

Layouts read (any image size and colour; ``.jpg``, ``.png``, …):

* ``root/<emotion>/<file>``: no split; a seeded stratified split is made (80/10/10 % per
  class into Training/PublicTest/PrivateTest) and written to a CSV so that it can be reused;
* ``root/<split>/<emotion>/<file>`` with ``<split>`` one of ``train``, ``training``, ``val``,
  ``valid``, ``validation``, ``test`` (``val*`` → PublicTest, ``test`` → PrivateTest).

Emotion folder names are normalised (``anger``/``angry``, ``happiness``/``happy``,
``sadness``/``sad``, ``surprised``/``surprise``, …, case-insensitive); a folder name that is not
an emotion is an error that lists every such name. Each photo goes through
:func:`fer_features.faces.alignment.faces_in` as ``fer predict`` reads a photo (detection,
alignment to FER2013's framing; a 48x48 photo, or a small, nearly square one in which no face
is found, taken whole as the face crop: :func:`~fer_features.faces.alignment.whole_image_face`),
in parallel with joblib; a photo with exactly one face gives one crop. Photos with no face,
several faces, or that cannot be read are left out and listed in
``PhotoFolderDataset.problems`` (and a CSV), never stopping the load;
:func:`~fer_features.training.evaluation.evaluate_split` (``fer evaluate``) scores those without a face as
wrong and stops on an unreadable one unless told to skip it. Results are cached under
:func:`~fer_features.config.default_cache_dir`, keyed by every file's path, size and
modification time and the detector settings.
"""

from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fer_features.config import (
    ALL_SPLITS,
    CACHE_VERSION,
    DEFAULT_DETECTOR,
    EMOTIONS,
    EMOTIONS8,
    EVAL_SPLITS,
    IMAGE_SIZE,
    USAGES,
    default_cache_dir,
)
from fer_features.data.fer2013 import _IMAGE_SUFFIXES, _SPLIT_FOLDER_USAGE, DataError, FERDataset, _fingerprint

#: Accepted emotion-folder names (lower case) → class name.
CLASS_ALIASES: dict[str, str] = {
    "angry": "angry", "anger": "angry", "mad": "angry",
    "disgust": "disgust", "disgusted": "disgust", "disgusting": "disgust",
    "fear": "fear", "fearful": "fear", "afraid": "fear", "scared": "fear",
    "happy": "happy", "happiness": "happy", "joy": "happy",
    "sad": "sad", "sadness": "sad",
    "surprise": "surprise", "surprised": "surprise", "suprise": "surprise",
    "neutral": "neutral", "neutrality": "neutral", "calm": "neutral",
    "contempt": "contempt",
}
#: Fractions of each class put in Training, PublicTest and PrivateTest when the folder has no split.
SPLIT_FRACTIONS = (0.8, 0.1, 0.1)


def normalise_class(name: str) -> str | None:
    """The class name of an emotion folder (``'Happiness'`` → ``'happy'``), or None if it is not one."""
    return CLASS_ALIASES.get(name.strip().lower().replace("-", "_").replace(" ", "_"))


@dataclass(frozen=True)
class PhotoFolderDataset(FERDataset):
    """:class:`~fer_features.data.fer2013.FERDataset` of a photo folder, plus what was left out.

    Attributes
    ----------
    problems : list of (str, str)
        ``(path relative to the root, problem)`` with problem ``'no face'``, ``'N faces'`` or
        ``'unreadable: …'`` for every photo left out.
    n_photos : int
        Image files found.
    problems_csv : str or None
        CSV (columns ``path,problem``) of :attr:`problems`, when written.
    split_csv : str or None
        CSV (columns ``path,usage``) of the split made for a folder without split folders.
    split_folders : bool
        Whether the folder has split folders (``root/<split>/<emotion>/<photo>``).
    """

    problems: list[tuple[str, str]] = field(default_factory=list)
    n_photos: int = 0
    problems_csv: str | None = None
    split_csv: str | None = None
    split_folders: bool = False

    def left_out(self, split: str = "all") -> list[tuple[str, str, str]]:
        """The photos of a split that gave no crop, with their class: ``(path, class, problem)``.

        Parameters
        ----------
        split : {'all', 'Training', 'PublicTest', 'PrivateTest'}, default='all'
            ``'all'``: every photo left out. A usage split: those in its split folder; none for
            a folder without split folders, whose split is made of the faces found only.

        Returns
        -------
        list of (str, str, str)
            Path relative to the root, class name (from the emotion folder) and problem
            (``'no face'``, ``'N faces'`` or ``'unreadable: …'``, as in :attr:`problems`), in
            path order.

        Raises
        ------
        ValueError
            If ``split`` is not ``'all'`` or one of :data:`USAGES`.
        """
        if split not in EVAL_SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {', '.join(EVAL_SPLITS)}")
        out = []
        for path, problem in self.problems:
            parts = path.split("/")
            usage = _SPLIT_FOLDER_USAGE[parts[-3].lower()] if self.split_folders else None
            if split == ALL_SPLITS or usage == split:
                out.append((path, normalise_class(parts[-2]), problem))
        return out

    def summary(self) -> str:
        """One line: faces kept, photos found, and the counts of each problem."""
        where = f" (list: {self.problems_csv})" if self.problems and self.problems_csv else ""
        return f"{len(self)} faces from {self.n_photos} photos; left out: {_counts(self.problems) or 'none'}{where}"


def is_photo_folder(root: str | os.PathLike) -> bool:
    """Whether a folder looks like labelled photos rather than FER2013's 48x48 crops.

    True if the first image file (in name order) is not a 48x48 image.
    """
    from PIL import Image

    for p in sorted(Path(root).rglob("*")):
        if p.is_file() and p.suffix.lower() in _IMAGE_SUFFIXES and not p.name.startswith("."):
            try:
                with Image.open(p) as im:
                    return im.size != (IMAGE_SIZE, IMAGE_SIZE)
            except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
                continue
    return False


def scan_photo_folder(root: str | os.PathLike) -> tuple[list[str], list[str], list[str | None]]:
    """Image files under ``root`` with their class and usage from the folder layout.

    Returns
    -------
    paths : list of str
        Paths relative to ``root`` (POSIX), sorted.
    classes : list of str
        Normalised class name of each.
    usages : list of str or None
        Usage split from a split folder, None for every file in the ``root/<emotion>/`` layout.

    Raises
    ------
    DataError
        If there are no image files, folder names are not emotions (all of them listed), files
        are not in an emotion folder, or the two layouts are mixed.
    """
    root = Path(root)
    files = sorted(
        p for p in root.rglob("*")
        if p.is_file() and p.suffix.lower() in _IMAGE_SUFFIXES and not any(s.startswith(".") for s in p.relative_to(root).parts)
    )
    if not files:
        raise DataError(f"{root}: no image files found (expected <emotion>/<photo> or <split>/<emotion>/<photo>)")
    rels = [p.relative_to(root).parts for p in files]
    split_layout = all(len(r) >= 3 and r[-3].lower() in _SPLIT_FOLDER_USAGE for r in rels)
    unknown, paths, classes, usages = set(), [], [], []
    for parts in rels:
        if len(parts) < 2:
            raise DataError(f"{root}: {parts[0]} is not in an emotion folder (expected <emotion>/<photo>)")
        if not split_layout and len(parts) != 2:
            raise DataError(
                f"{root}: {'/'.join(parts)}: expected <emotion>/<photo>, or <split>/<emotion>/<photo> for every "
                f"photo with <split> one of {', '.join(sorted(_SPLIT_FOLDER_USAGE))}"
            )
        cls = normalise_class(parts[-2])
        if cls is None:
            unknown.add(parts[-2])
            continue
        paths.append("/".join(parts))
        classes.append(cls)
        usages.append(_SPLIT_FOLDER_USAGE[parts[-3].lower()] if split_layout else None)
    if unknown:
        raise DataError(
            f"{root}: unknown emotion folder(s) {', '.join(sorted(map(repr, unknown)))}; expected one of "
            f"{', '.join(sorted(CLASS_ALIASES))}"
        )
    return paths, classes, usages


def stratified_split(classes, *, seed: int = 0, fractions=SPLIT_FRACTIONS) -> np.ndarray:
    """Usage per image: within each class, a seeded shuffle cut at ``fractions``.

    Parameters
    ----------
    classes : array-like of shape (n_samples,)
    seed : int, default=0
    fractions : tuple of 3 float, default=(0.8, 0.1, 0.1)
        Training, PublicTest, PrivateTest.

    Returns
    -------
    usage : ndarray of shape (n_samples,), dtype str
        A class with n images gets ``round(n * fractions[2])`` PrivateTest and
        ``round(n * fractions[1])`` PublicTest images; the rest, and every image of a class
        of one or two, are Training.
    """
    classes = np.asarray(classes)
    usage = np.full(len(classes), "Training", dtype="<U11")
    rng = np.random.default_rng(seed)
    for c in sorted(set(classes.tolist())):
        idx = rng.permutation(np.flatnonzero(classes == c))
        if len(idx) < 3:
            continue
        n_test, n_val = round(len(idx) * fractions[2]), round(len(idx) * fractions[1])
        usage[idx[:n_test]] = "PrivateTest"
        usage[idx[n_test : n_test + n_val]] = "PublicTest"
    return usage


def _process_photo(path: str, detector: str, upsample: int | None, min_score: float | None):
    """(crop or None, problem or None) of one photo; runs in a joblib worker."""
    from fer_features.faces.alignment import faces_in
    from fer_features.faces.images import ImageError

    try:  # read as fer predict reads a photo (faces_in decodes it; a missing file is an ImageError too)
        _, faces = faces_in(path, detector=detector, upsample=upsample, min_score=min_score)
    except ImageError as exc:
        return None, f"unreadable: {exc}"
    if not faces:
        return None, "no face"
    if len(faces) > 1:
        return None, f"{len(faces)} faces"
    return faces[0].crop, None


def load_photo_folder(
    root: str | os.PathLike,
    *,
    seed: int = 0,
    split_csv: str | os.PathLike | None = None,
    detector: str = DEFAULT_DETECTOR,
    upsample: int | None = None,
    min_score: float | None = None,
    n_jobs: int | None = -1,
    cache: bool = True,
    cache_dir: str | os.PathLike | None = None,
) -> PhotoFolderDataset:
    """Detect, align and crop the face in every labelled photo of a folder.

    Parameters
    ----------
    root : str or path-like
        ``root/<emotion>/<photo>`` or ``root/<split>/<emotion>/<photo>`` (see the module notes).
    seed : int, default=0
        Seed of the stratified split made when the folder has no split folders.
    split_csv : str or path-like, optional
        A ``path,usage`` CSV (as this function writes) giving the usage of each photo, to reuse
        a split; photos it does not list are split afresh. Default: the split is made and
        written to the cache folder (``PhotoFolderDataset.split_csv``).
    detector : {'yuface', 'hog', 'mmod'} or a registered name, default='yuface'
    upsample : int, optional
    min_score : float, optional
        Face-detection settings, see :func:`fer_features.faces.alignment.detect_faces`.
    n_jobs : int, default=-1
        joblib workers for detection and alignment; -1 all cores, 1 none.
    cache : bool, default=True
    cache_dir : str or path-like, optional
        Defaults to :func:`~fer_features.config.default_cache_dir`; also where the problem and
        split CSVs go.

    Returns
    -------
    PhotoFolderDataset
        One 48x48 uint8 crop per photo with exactly one face (found, or the photo taken whole);
        ``names`` are paths relative to ``root``; ``classes`` is :data:`EMOTIONS`, or
        :data:`EMOTIONS8` when a contempt folder exists.

    Raises
    ------
    FileNotFoundError
        If ``root`` is not a folder.
    DataError
        For a bad layout or unknown emotion folders (see :func:`scan_photo_folder`), or when no
        photo has exactly one face.
    """
    from joblib import Parallel, delayed

    from fer_features.faces.alignment import (
        WHOLE_FACE_MAX_ASPECT,
        WHOLE_FACE_MAX_SIDE,
        WHOLE_FACE_MIN_SIDE,
        WHOLE_FACE_MIN_STD,
    )

    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder")
    paths, classes, usages = scan_photo_folder(root)
    names = EMOTIONS8 if "contempt" in classes else EMOTIONS
    cache_dir = Path(cache_dir or default_cache_dir())
    # which photos are taken whole as face crops (faces_in) is part of what the cache holds
    whole = ("faces_in", WHOLE_FACE_MIN_SIDE, WHOLE_FACE_MAX_SIDE, WHOLE_FACE_MAX_ASPECT, WHOLE_FACE_MIN_STD)
    key = _cache_key(root, paths, (detector, upsample, min_score, whole))
    cache_file = cache_dir / f"photos-{key}.npz"

    crops = _read_cache(cache_file) if cache else None
    if crops is None:
        results = Parallel(n_jobs=n_jobs)(
            delayed(_process_photo)(str(root / p), detector, upsample, min_score) for p in paths
        )
        ok = np.array([c is not None for c, _ in results], bool)
        X = np.stack([c for c, _ in results if c is not None]) if ok.any() else np.zeros((0, IMAGE_SIZE, IMAGE_SIZE), np.uint8)
        problems = np.array([p or "" for _, p in results], dtype=str)
        crops = (ok, X, problems)
        if cache:
            _write_cache(cache_file, *crops)
    ok, X, problem_of = crops
    problems = [(p, str(problem_of[i])) for i, p in enumerate(paths) if not ok[i]]
    kept = [p for i, p in enumerate(paths) if ok[i]]
    y = np.array([names.index(c) for c, k in zip(classes, ok) if k], np.int64)
    if not kept:
        raise DataError(f"{root}: no photo has exactly one face ({len(paths)} photos: {_counts(problems)})")

    written_split = None
    if usages[0] is not None:
        usage = np.array([u for u, k in zip(usages, ok) if k], dtype="<U11")
    else:
        usage = stratified_split(y, seed=seed)
        if split_csv is not None:
            given = _read_split_csv(Path(split_csv))
            usage = np.array([given.get(p, u) for p, u in zip(kept, usage)], dtype="<U11")
        written_split = _write_csv(cache_dir / f"photos-{key}.split.csv", ("path", "usage"), zip(kept, usage.tolist()))
    problems_csv = _write_csv(cache_dir / f"photos-{key}.problems.csv", ("path", "problem"), problems) if problems else None
    kept_arr = np.asarray(kept)
    return PhotoFolderDataset(
        X, y, usage, kept_arr, str(root), _fingerprint(X, y, usage), [], names, None,
        problems=problems, n_photos=len(paths), problems_csv=problems_csv, split_csv=written_split,
        split_folders=usages[0] is not None,
    )


def _counts(problems) -> str:
    kinds: dict[str, int] = {}
    for _, p in problems:
        k = "several faces" if p.endswith("faces") else p.split(":")[0]
        kinds[k] = kinds.get(k, 0) + 1
    return ", ".join(f"{k} {v}" for k, v in sorted(kinds.items()))


def _read_split_csv(path: Path) -> dict[str, str]:
    try:
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as exc:
        raise DataError(f"{path}: cannot read the split CSV ({exc})") from None
    if rows and not {"path", "usage"} <= set(rows[0]):
        raise DataError(f"{path}: a split CSV needs the columns path,usage")
    bad = [r["usage"] for r in rows if r["usage"] not in USAGES]
    if bad:
        raise DataError(f"{path}: usage {bad[0]!r} is not one of {', '.join(USAGES)}")
    return {r["path"]: r["usage"] for r in rows}


def _write_csv(path: Path, header, rows) -> str | None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(header)
            w.writerows(rows)
        return str(path)
    except OSError:
        return None


def _cache_key(root: Path, paths: list[str], settings) -> str:
    h = hashlib.sha256(f"{CACHE_VERSION}|{root.resolve()}|{settings!r}".encode())
    for p in paths:
        st = (root / p).stat()
        h.update(f"{p}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:20]


def _read_cache(cache_file: Path):
    if not cache_file.exists():
        return None
    try:
        with np.load(cache_file, allow_pickle=False) as z:
            return z["ok"], z["X"], z["problems"]
    except (OSError, KeyError, ValueError):
        return None


def _write_cache(cache_file: Path, ok, X, problems) -> None:
    from fer_features.persist.outputs import atomic_path

    try:
        with atomic_path(cache_file) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, ok=ok, X=X, problems=problems)
    except OSError:
        pass  # caching is an optimisation; an unwritable cache folder must not fail a load


def crop_as_photo(crop: np.ndarray, scale: int = 4, size: int = 320) -> np.ndarray:
    """A 48x48 face crop made photo-sized: upscaled, centred on a plain square.

    For measuring how often the photo path (detection, landmarks, alignment) finds the face in
    images whose answer is known, such as FER2013's own crops.

    Parameters
    ----------
    crop : ndarray of shape (48, 48), dtype uint8
    scale : int, default=4
        Upscaling factor (bicubic, Pillow): the face becomes ``48 * scale`` pixels wide.
    size : int, default=320
        Side of the square canvas in pixels; filled with the mean grey of the crop's border.

    Returns
    -------
    ndarray of shape (size, size), dtype uint8

    Raises
    ------
    ValueError
        If the upscaled crop does not fit the canvas.
    """
    if 48 * scale > size:
        raise ValueError(f"a crop upscaled {scale} times ({48 * scale} px) does not fit a {size}-pixel canvas")
    from PIL import Image

    big = np.asarray(Image.fromarray(crop).resize((48 * scale, 48 * scale), Image.BICUBIC))
    border = np.concatenate([crop[0], crop[-1], crop[:, 0], crop[:, -1]]).mean()
    canvas = np.full((size, size), round(border), np.uint8)
    off = (size - big.shape[0]) // 2
    canvas[off : off + big.shape[0], off : off + big.shape[1]] = big
    return canvas


def pipeline_views(
    X: np.ndarray, *, detector: str = DEFAULT_DETECTOR, scale: int = 4, size: int = 384, n_jobs: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """FER2013 crops as the photo pipeline frames them: each made a photo, found and re-aligned.

    FER2013's crops are framed by the challenge's own face finder; a photo's faces are framed by
    this toolkit's detector and eye alignment (:func:`~fer_features.faces.alignment.find_faces`),
    which puts every face's eyes on the same two points. The default network, trained on FER2013's
    framing alone, lost 2.6 points of PublicTest accuracy on PublicTest's faces re-aligned that
    way (BENCHMARKS.md, "Robustness"). Training on these views too
    (:attr:`~fer_features.cnn.recipe.TrainConfig.pipeline_views`) matches what a photo's face
    looks like to the network.

    Parameters
    ----------
    X : ndarray of shape (n_faces, 48, 48), dtype uint8
        Face crops.
    detector : str, default=DEFAULT_DETECTOR
        The photo pipeline's face detector (:mod:`fer_features.faces.detectors`).
    scale, size : int, default=4, 384
        Each crop is upscaled ``scale`` times and centred on a ``size``-pixel canvas
        (:func:`crop_as_photo`): a face is not found in a 48-pixel photo.
    n_jobs : int, optional
        Worker processes (joblib); default: the CPU cores (:func:`fer_features.threads.cpu_cores`).

    Returns
    -------
    views : ndarray of shape (n_faces, 48, 48), dtype uint8
        The pipeline's crop of the highest-scoring face found in each photo; the crop itself
        where none was found.
    found : ndarray of shape (n_faces,), dtype bool
        Whether a face was found (where not, the view is the crop itself).

    Raises
    ------
    ValueError
        If ``X`` is not a stack of 48x48 crops, or for an unknown detector.
    """
    from joblib import Parallel, delayed

    from fer_features.threads import cpu_cores

    X = np.asarray(X)
    if X.ndim != 3 or X.shape[1:] != (48, 48) or X.dtype != np.uint8:
        raise ValueError(f"pipeline_views needs uint8 crops of shape (n, 48, 48), got {X.dtype} {X.shape}")
    n_jobs = n_jobs or cpu_cores()
    chunks = [c for c in np.array_split(np.arange(len(X)), max(1, min(len(X), 8 * n_jobs))) if len(c)]
    parts = Parallel(n_jobs=n_jobs)(delayed(_pipeline_views)(X[c], detector, scale, size) for c in chunks) if chunks else []
    views = np.concatenate([v for v, _ in parts]) if parts else X.copy()
    found = np.concatenate([f for _, f in parts]) if parts else np.zeros(len(X), bool)
    return views, found


def _pipeline_views(X: np.ndarray, detector: str, scale: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    from fer_features.faces.alignment import find_faces

    views, found = X.copy(), np.zeros(len(X), bool)
    for i, crop in enumerate(X):
        faces = find_faces(crop_as_photo(crop, scale, size), detector=detector)
        if faces:
            views[i], found[i] = faces[0].crop, True
    return views, found
