"""On-disk caches of a benchmark: extracted feature matrices and finished cells.

Every entry is keyed by a hash of what it depends on (the data fingerprint, the extractor's
parameters — and for the ``cnn`` feature the checkpoint's bytes —, the head and its settings),
so a changed input is a miss, never a stale hit. Files are written atomically: a run killed
mid-write leaves no half file behind, and the next run picks up the finished entries.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import joblib
import numpy as np
import scipy.sparse as sp

from fer_features.config import CACHE_VERSION
from fer_features.persist.outputs import atomic_path


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's bytes (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def extractor_key(name: str, transformer, fingerprint: str, fit_rows=None) -> str:
    """Cache key of one extractor's output on one data set.

    Parameters
    ----------
    name : str
        Registered feature name (``hog``).
    transformer : FaceImageTransformer
        Unfitted extractor; its ``get_params()`` (without ``n_jobs``/``batch_size``/``device``,
        which do not change the output) enter the key, and the checkpoint file's SHA-256
        replaces its path for the ``cnn`` feature.
    fingerprint : str
        :attr:`FERDataset.fingerprint` of the images.
    fit_rows : ndarray of int, optional
        For an extractor that learns from the images (``sift-bovw``): the rows it is fitted
        on (Training). They enter the key, so a matrix computed with another fit is a miss.

    Returns
    -------
    str
        32 hex digits (joblib.hash, MD5 of the pickled values).
    """
    params = {k: v for k, v in transformer.get_params().items() if k not in ("n_jobs", "batch_size", "device")}
    for key in ("checkpoint", "weights"):
        if params.get(key):
            params[key] = file_digest(params[key])
    parts = [CACHE_VERSION, name, type(transformer).__name__, params, fingerprint]
    if fit_rows is not None:
        parts.append(["fit", joblib.hash(np.asarray(fit_rows, dtype=np.int64))])
    return joblib.hash(parts)


class BenchmarkCache:
    """Feature matrices and cell results of ``fer benchmark`` under one folder.

    Parameters
    ----------
    root : str or Path
        Created when first written. Layout: ``features/{name}-{key}.npy`` (float32,
        ``(n_images, n_features)``, rows in data-set order; ``.npz``, CSR, for a sparse matrix) with ``.json`` metadata (dims,
        seconds, img/s, when), and ``cells/{slug}-{key}.json`` (one finished cell's record).
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)

    # --- features -------------------------------------------------------------------------
    def _feature_paths(self, name: str, key: str) -> tuple[Path, Path]:
        stem = self.root / "features" / f"{name}-{key[:20]}"
        return stem.with_suffix(".npy"), stem.with_suffix(".json")

    def load_features(self, name: str, key: str) -> tuple[np.ndarray, dict] | None:
        """The cached matrix (memory-mapped, read-only; CSR if stored sparse) and its metadata, or None on a miss."""
        npy, meta = self._feature_paths(name, key)
        npz = npy.with_suffix(".npz")
        if not ((npy.is_file() or npz.is_file()) and meta.is_file()):
            return None
        try:
            info = json.loads(meta.read_text())
            X = sp.load_npz(npz).tocsr() if info.get("sparse") else np.load(npy, mmap_mode="r")
        except (OSError, ValueError):
            return None  # a damaged entry is a miss; it is rewritten
        if info.get("key") != key or X.shape != (info.get("n_images"), info.get("dims")):
            return None
        return X, info

    def save_features(self, name: str, key: str, X, info: dict) -> dict:
        """Store a matrix (as float32; a sparse one as CSR ``.npz``) and its metadata; returns the metadata written."""
        npy, meta = self._feature_paths(name, key)
        npy.parent.mkdir(parents=True, exist_ok=True)
        sparse = sp.issparse(X)
        X = sp.csr_matrix(X, dtype=np.float32) if sparse else np.ascontiguousarray(X, dtype=np.float32)
        info = {**info, "name": name, "key": key, "n_images": int(X.shape[0]), "dims": int(X.shape[1]),
                "sparse": sparse, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        target = npy.with_suffix(".npz") if sparse else npy
        with atomic_path(target) as tmp:
            with open(tmp, "wb") as fh:
                if sparse:
                    sp.save_npz(fh, X, compressed=False)
                else:
                    np.save(fh, X)
        with atomic_path(meta) as tmp:  # written last: its presence marks a complete entry
            tmp.write_text(json.dumps(info, indent=2) + "\n")
        return info

    # --- cells ----------------------------------------------------------------------------
    def _cell_path(self, slug: str, key: str) -> Path:
        return self.root / "cells" / f"{slug}-{key[:20]}.json"

    def load_cell(self, slug: str, key: str) -> dict | None:
        """A finished cell's record, or None."""
        path = self._cell_path(slug, key)
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        return record if record.get("key") == key else None

    def save_cell(self, slug: str, key: str, record: dict) -> Path:
        """Store a finished cell's record (JSON) atomically."""
        path = self._cell_path(slug, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps({**record, "key": key}, indent=2, default=str) + "\n")
        return path
