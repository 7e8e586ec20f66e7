"""Looking at a data set before training on it: counts, plots and data-quality findings.

:func:`inspect_dataset` counts images per class and split and finds near-blank images, exact
duplicates (same decoded pixels, by SHA-1) and near duplicates (mean absolute difference of a
few grey levels: the same face re-encoded), within a split and across splits. The plots are
matplotlib PNGs: a class histogram, a sample grid and the mean face of each class.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from pathlib import Path

import numpy as np

from fer_features.config import USAGES
from fer_features.data.fer2013 import FERDataset
from fer_features.plotting import pyplot, save_figure

#: Images whose pixel standard deviation (grey levels) is below this are near-blank.
BLANK_STD = 2.0
#: Two images whose mean absolute pixel difference (grey levels) is below this are near duplicates.
NEAR_DUPLICATE_MAD = 4.0


def _groups_summary(data: FERDataset, groups: list[list[int]], max_examples: int) -> dict:
    cross = [g for g in groups if len(set(data.usage[g].tolist())) > 1]
    conflicting = [g for g in groups if len(set(data.y[g].tolist())) > 1]
    pairs: dict[str, int] = defaultdict(int)
    for g in cross:
        for a in sorted(set(data.usage[g].tolist())):
            for b in sorted(set(data.usage[g].tolist())):
                if USAGES.index(a) < USAGES.index(b):
                    pairs[f"{a}/{b}"] += 1
    return {
        "groups": len(groups),
        "images": int(sum(len(g) for g in groups)),
        "redundant_images": int(sum(len(g) - 1 for g in groups)),
        "within_split_groups": len(groups) - len(cross),
        "cross_split_groups": len(cross),
        "cross_split_pairs": dict(pairs),
        "conflicting_label_groups": len(conflicting),
        "examples": [data.names[g].tolist() for g in (cross + groups)[:max_examples]],
        "cross_split_examples": [data.names[g].tolist() for g in cross[:max_examples]],
    }


def exact_duplicate_groups(X: np.ndarray) -> list[list[int]]:
    """Groups (of two or more indices) of images with identical pixels, by SHA-1 of the bytes."""
    by_hash: dict[str, list[int]] = defaultdict(list)
    for i, x in enumerate(X):
        by_hash[hashlib.sha1(np.ascontiguousarray(x).tobytes()).hexdigest()].append(i)
    return [g for g in by_hash.values() if len(g) > 1]


def near_duplicate_groups(X: np.ndarray, *, max_mad: float = NEAR_DUPLICATE_MAD, exclude_exact: bool = True) -> list[list[int]]:
    """Groups of images that differ by less than ``max_mad`` grey levels on average.

    Candidates come from a radius search on 16x16 block means projected by PCA to 32
    dimensions, with radius ``max_mad * 16`` (the L2 length of a difference of ``max_mad``
    grey levels spread over the 256 block means); each candidate pair is then checked on the
    full images, and pairs are joined into groups transitively (union-find). A projection never
    lengthens a distance, so every pair whose difference is spread out like re-encoding noise
    is found; a pair that differs in one small region only can be missed.

    Parameters
    ----------
    X : ndarray of shape (n_samples, 48, 48), dtype uint8
    max_mad : float, default=4.0
        Largest mean absolute pixel difference (grey levels) of a near-duplicate pair.
    exclude_exact : bool, default=True
        Leave out groups whose images are all pixel-identical (see :func:`exact_duplicate_groups`).

    Returns
    -------
    list of list of int
    """
    from sklearn.decomposition import PCA
    from sklearn.neighbors import NearestNeighbors

    n, h, w = X.shape
    if n < 2:
        return []
    b = 3 if h % 3 == 0 and w % 3 == 0 else 1
    small = X.astype(np.float32).reshape(n, h // b, b, w // b, b).mean(axis=(2, 4)).reshape(n, -1)
    k = min(32, small.shape[1], n)
    Z = PCA(n_components=k, random_state=0).fit_transform(small)
    radius = max_mad * np.sqrt(small.shape[1])
    nn = NearestNeighbors(radius=radius).fit(Z)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    flat = X.reshape(n, -1).astype(np.int16)
    for start in range(0, n, 4096):
        neighbours = nn.radius_neighbors(Z[start : start + 4096], return_distance=False)
        for i, cand in zip(range(start, start + 4096), neighbours):
            cand = cand[cand > i]
            if len(cand) == 0:
                continue
            mad = np.abs(flat[cand] - flat[i]).mean(axis=1)
            for j in cand[mad < max_mad]:
                parent[find(int(j))] = find(i)
    groups: dict[int, list[int]] = defaultdict(list)
    for i in range(n):
        groups[find(i)].append(i)
    out = [g for g in groups.values() if len(g) > 1]
    if exclude_exact:
        out = [g for g in out if any(not np.array_equal(X[g[0]], X[j]) for j in g[1:])]
    return out


def inspect_dataset(
    data: FERDataset,
    *,
    blank_std: float = BLANK_STD,
    near_duplicates: bool = True,
    max_mad: float = NEAR_DUPLICATE_MAD,
    max_examples: int = 10,
) -> dict:
    """Counts and data-quality findings of a data set.

    Parameters
    ----------
    data : FERDataset
    blank_std : float, default=2.0
        Pixel standard deviation (grey levels) under which an image is near-blank.
    near_duplicates : bool, default=True
        Also look for near duplicates (see :func:`near_duplicate_groups`; a few seconds on
        FER2013's 35,887 images).
    max_mad : float, default=4.0
    max_examples : int, default=10
        How many example names to list per finding.

    Returns
    -------
    dict
        ``n_images``, ``classes``, ``counts`` (``{usage: {class: n}}``), ``unreadable``
        (``[[name, problem], …]``: files the loader skipped, and for photo folders the photos
        that could not be read), ``photo_problems`` (photo folders: counts of no-face and
        several-face photos, and their CSV), ``blank`` (``count``, ``by_split``, ``threshold_std``,
        ``names``), ``exact_duplicates`` and ``near_duplicates`` (``groups``, ``images``,
        ``redundant_images``, ``within_split_groups``, ``cross_split_groups``,
        ``cross_split_pairs``, ``conflicting_label_groups`` (a group holding more than one
        label), ``examples``).
    """
    X = data.X
    std = X.reshape(len(X), -1).std(axis=1) if len(X) else np.zeros(0)
    blank = np.flatnonzero(std < blank_std)
    unreadable = [list(s) for s in data.skipped]
    photo = {}
    problems = getattr(data, "problems", None)
    if problems is not None:
        unreadable += [[p, m] for p, m in problems if m.startswith("unreadable")]
        photo = {
            "photos": data.n_photos,
            "no_face": sum(m == "no face" for _, m in problems),
            "several_faces": sum(m.endswith("faces") for _, m in problems),
            "problems_csv": data.problems_csv,
        }
    report = {
        "source": data.source,
        "fingerprint": data.fingerprint,
        "n_images": len(data),
        "classes": list(data.classes),
        "counts": {u: c for u, c in data.counts().items() if sum(c.values())},
        "unreadable": unreadable,
        "photo_problems": photo,
        "blank": {
            "threshold_std": blank_std,
            "count": len(blank),
            "by_split": {u: int(np.sum(data.usage[blank] == u)) for u in USAGES},
            "names": data.names[blank].tolist(),
        },
        "exact_duplicates": _groups_summary(data, exact_duplicate_groups(X), max_examples),
    }
    if near_duplicates:
        groups = near_duplicate_groups(X, max_mad=max_mad)
        report["near_duplicates"] = {"max_mad": max_mad, **_groups_summary(data, groups, max_examples)}
    return report


# --------------------------------------------------------------------------- plots


def plot_class_histogram(data: FERDataset, path: str | Path) -> Path:
    """Bar chart of images per class, one bar per usage split, saved as PNG."""
    plt = pyplot()
    counts = data.counts()
    usages = [u for u in USAGES if sum(counts[u].values())]
    x = np.arange(len(data.classes))
    width = 0.8 / max(1, len(usages))
    fig, ax = plt.subplots(figsize=(7.5, 4), dpi=100)
    for k, u in enumerate(usages):
        values = [counts[u][c] for c in data.classes]
        bars = ax.bar(x + (k - (len(usages) - 1) / 2) * width, values, width, label=u)
        ax.bar_label(bars, fontsize=7)
    ax.set_xticks(x, data.classes)
    ax.set_ylabel("images")
    ax.set_title(f"{Path(data.source).name}: {len(data):,} images per class and split")
    ax.legend()
    fig.tight_layout()
    return save_figure(fig, path)


def plot_sample_grid(data: FERDataset, path: str | Path, *, per_class: int = 8, seed: int = 0) -> Path:
    """Grid of ``per_class`` random images (seeded) per class, one class per row, saved as PNG."""
    plt = pyplot()
    rng = np.random.default_rng(seed)
    fig, axes = plt.subplots(
        len(data.classes), per_class, figsize=(per_class * 0.9 + 1, len(data.classes) * 0.95), dpi=100, squeeze=False
    )
    for r, c in enumerate(data.classes):
        idx = np.flatnonzero(data.y == r)
        chosen = rng.choice(idx, size=min(per_class, len(idx)), replace=False) if len(idx) else []
        for k in range(per_class):
            ax = axes[r, k]
            ax.set_xticks([])
            ax.set_yticks([])
            if k < len(chosen):
                ax.imshow(data.X[chosen[k]], cmap="gray", vmin=0, vmax=255)
            else:
                ax.set_axis_off()
        axes[r, 0].set_ylabel(c, rotation=0, ha="right", va="center")
    fig.suptitle(f"{per_class} random images per class")
    fig.tight_layout()
    return save_figure(fig, path)


def plot_mean_faces(data: FERDataset, path: str | Path) -> Path:
    """The pixel-wise mean image of each class, side by side, saved as PNG."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(data.classes), figsize=(len(data.classes) * 1.4, 1.9), dpi=100, squeeze=False)
    for r, c in enumerate(data.classes):
        ax = axes[0, r]
        ax.set_xticks([])
        ax.set_yticks([])
        mask = data.y == r
        if mask.any():
            ax.imshow(data.X[mask].mean(axis=0), cmap="gray", vmin=0, vmax=255)
        ax.set_title(f"{c}\n({int(mask.sum()):,})", fontsize=8)
    fig.suptitle("mean face per class")
    fig.tight_layout()
    return save_figure(fig, path)


def write_plots(data: FERDataset, out_dir: str | Path, *, per_class: int = 8, seed: int = 0) -> dict[str, str]:
    """Write ``class_histogram.png``, ``sample_grid.png`` and ``mean_faces.png`` under ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return {
        "class_histogram": str(plot_class_histogram(data, out_dir / "class_histogram.png")),
        "sample_grid": str(plot_sample_grid(data, out_dir / "sample_grid.png", per_class=per_class, seed=seed)),
        "mean_faces": str(plot_mean_faces(data, out_dir / "mean_faces.png")),
    }
