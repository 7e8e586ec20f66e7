"""Training and PublicTest of FER2013 as lossless WebP mosaics, for ``benchmarks/gpu_distill.py``.

The device machine gets the repository and what a call carries (64 MiB in all), not
``../shared``: these files are what travels. WebP's lossless mode packs the faces to ~70% of
their bytes (zlib in ``np.savez_compressed``: ~95%), which is what lets Training and PublicTest
fit beside the repository; the pixels decode bit for bit. PrivateTest stays behind, so nothing
on the device can select on it. Labels are indices into the class names sorted alphabetically,
the order of the CNN's outputs in :class:`fer_features.cnn.estimators.CNNClassifier`.

Usage::

    python benchmarks/gpu_data.py ../shared/data/fer2013.csv.gz .gpu
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

#: Faces per mosaic: 50 rows of 40.
GRID = (50, 40)


def write_mosaics(X: np.ndarray, folder: Path, name: str) -> None:
    """``(n, 48, 48)`` uint8 → ``folder/name-000.webp`` … (lossless mosaics of ``GRID`` faces, the last padded)."""
    per = GRID[0] * GRID[1]
    h, w = X.shape[1:]
    for k in range(0, len(X), per):
        chunk = np.zeros((per, h, w), np.uint8)
        chunk[: len(X[k : k + per])] = X[k : k + per]
        mosaic = chunk.reshape(*GRID, h, w).transpose(0, 2, 1, 3).reshape(GRID[0] * h, GRID[1] * w)
        Image.fromarray(mosaic).save(folder / f"{name}-{k // per:03d}.webp", lossless=True, quality=50, method=4)


def read_mosaics(folder: Path, name: str, n: int, size: int = 48) -> np.ndarray:
    """The ``n`` faces written by :func:`write_mosaics`, ``(n, size, size)`` uint8."""
    parts = []
    for path in sorted(Path(folder).glob(f"{name}-*.webp")):
        mosaic = np.asarray(Image.open(path).convert("L"))
        parts.append(mosaic.reshape(GRID[0], size, GRID[1], size).transpose(0, 2, 1, 3).reshape(-1, size, size))
    return np.concatenate(parts)[:n]


def read_trainval(folder: str | Path) -> dict[str, np.ndarray]:
    """``X_train, y_train, X_val, y_val, classes`` from a folder written by :func:`main`."""
    folder = Path(folder)
    meta = dict(np.load(folder / "labels.npz"))
    meta["X_train"] = read_mosaics(folder, "train", len(meta["y_train"]))
    meta["X_val"] = read_mosaics(folder, "val", len(meta["y_val"]))
    return meta


def main(source: str, out: str) -> None:
    from fer_features.config import EMOTIONS
    from fer_features.datasets import load_fer2013

    data = load_fer2013(source)
    classes = np.array(sorted(EMOTIONS))
    index = np.searchsorted(classes, np.asarray(EMOTIONS)[data.y])  # FER2013 order -> alphabetical
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    labels = {"classes": classes}
    for key, usage in (("train", "Training"), ("val", "PublicTest")):
        keep = data.usage == usage
        write_mosaics(data.X[keep], folder, key)
        labels[f"y_{key}"] = index[keep]
    np.savez(folder / "labels.npz", **labels)
    back = read_trainval(folder)
    for key, usage in (("train", "Training"), ("val", "PublicTest")):
        assert np.array_equal(back[f"X_{key}"], data.X[data.usage == usage]), "WebP round trip changed pixels"
    size = sum(p.stat().st_size for p in folder.iterdir())
    print(f"{folder}: {size:,} bytes; Training {len(back['y_train'])}, PublicTest {len(back['y_val'])}, pixels identical after decoding")


if __name__ == "__main__":
    main(*sys.argv[1:3])
