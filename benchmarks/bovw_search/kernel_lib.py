"""Shared by the kernel-sum scripts (gram.py, rbf_kernels.py, kernel_sum.py, local.py, late_fusion.py).

Features come from the `fer benchmark` cache (extracted on first use, with the parameters of
benchmarks/sift_bovw_stacked.toml); kernel matrices go to $BOVW_SEARCH_DIR (default
.cache/bovw-search), float32 .npy, Training x Training and (PublicTest + PrivateTest) x Training.
Run from the repository root.
"""
import os
import time

import numpy as np
import scipy.sparse as sp

from fer_features.benchmark.cache import BenchmarkCache
from fer_features.benchmark.run import extract_features
from fer_features.config import default_cache_dir
from fer_features.datasets import load_fer2013

WORK = os.environ.get("BOVW_SEARCH_DIR", ".cache/bovw-search")
os.makedirs(WORK, exist_ok=True)
d = load_fer2013("../shared/data/fer2013.csv.gz")
y, usage = np.asarray(d.y), np.asarray(d.usage)
TR, PU, PR = (np.flatnonzero(usage == u) for u in ("Training", "PublicTest", "PrivateTest"))
TE = np.concatenate([PU, PR])  # rows of the *_te.npy kernels
cache = BenchmarkCache(default_cache_dir("benchmark"))
PARAMS = {"sift-bovw": dict(n_words=4096, pyramid=[1, 2, 3, 4], encoding="presence", norm="l2", sparse_output=True)}
N_LEVELS = 4  # the bag of words' dot product is a sum of 4 per-level cosines: divided by 4, it is in [0, 1]


def feats(names):
    return extract_features(d, names, cache, feature_params=PARAMS, n_jobs=2)


def bovw():
    return sp.csr_matrix(feats(["sift-bovw"])["sift-bovw"][0], dtype=np.float32)


def standardised_pca(names, n=256):
    """The svm head's input: the blocks joined, standardised, PCA to n (fitted on Training)."""
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    f = feats(names)
    H = np.hstack([np.asarray(f[k][0], np.float32) for k in names])
    H = StandardScaler().fit(H[TR]).transform(H)
    if H.shape[1] > n:
        H = PCA(n, random_state=0).fit(H[TR]).transform(H)
    return H.astype(np.float32)


def rbf(A, B, gamma):
    sq = (A ** 2).sum(1)[:, None] + (B ** 2).sum(1)[None] - 2 * A @ B.T
    return np.exp(-gamma * np.maximum(sq, 0))


def path(name, part):
    return os.path.join(WORK, f"k_{name}_{part}.npy")


def component(name):
    """A kernel as (train, test) memory maps and the map applied to its values.

    'bovw': the presence vectors' dot product / 4 (the linear kernel); 'bovwexpA':
    exp(A * (dot / 4 - 1)), an RBF on the per-level-normalised vectors; 'bovw-mirror': the
    dot product with the other face's mirror image, / 4 (mirror_kernels.py); any other name:
    an RBF kernel saved by rbf_kernels.py or mirror_kernels.py.
    """
    if name.startswith("bovwexp"):
        a = float(name[len("bovwexp"):])
        G, T = np.load(path("bovw", "tr"), mmap_mode="r"), np.load(path("bovw", "te"), mmap_mode="r")
        return G, T, lambda M: np.exp(a * (np.asarray(M, np.float64) / N_LEVELS - 1))
    G, T = np.load(path(name, "tr"), mmap_mode="r"), np.load(path(name, "te"), mmap_mode="r")
    if name.startswith("bovw"):
        return G, T, lambda M: np.asarray(M, np.float64) / N_LEVELS
    return G, T, lambda M: np.asarray(M, np.float64)


def kernel_sum(spec, rows=None):
    """'bovw:1,hog+lbp+landmarks:3' -> (Training x Training, rows of TE x Training) float64."""
    parts = [(c.rsplit(":", 1)[0].replace("+", "_"), float(c.rsplit(":", 1)[1])) for c in spec.split(",")]
    rows = np.arange(len(PU)) if rows is None else rows
    K = np.zeros((len(TR), len(TR))); Kt = np.zeros((len(rows), len(TR)))
    for name, w in parts:
        G, T, f = component(name)
        for a in range(0, len(TR), 2000):
            K[a:a + 2000] += w * f(G[a:a + 2000])
        Kt += w * f(T[rows])
    return K, Kt


def clock(t0):
    return f"{time.time() - t0:.0f} s, load {os.getloadavg()[0]:.2f}"
