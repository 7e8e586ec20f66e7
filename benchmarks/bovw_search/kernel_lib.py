"""Shared by the kernel-sum scripts (gram.py, rbf_kernels.py, extra_kernels.py, mirror_kernels.py,
kernel_sum.py, local.py, late_fusion.py).

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
from fer_features.heads import _rbf_gamma
from sklearn.metrics.pairwise import rbf_kernel

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


def joined(names):
    """The feature blocks side by side, float32, rows in data-set order."""
    f = feats(list(names))
    return np.hstack([np.asarray(f[k][0], np.float32) for k in names])


def reduce(H, *others, n=256):
    """The svm head's input: standardised, then PCA to n if wider, both fitted on H's Training
    rows; the same fitted maps applied to each of ``others`` (e.g. the mirror images)."""
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(H[TR])
    out = [scaler.transform(M) for M in (H, *others)]
    if H.shape[1] > n:
        pca = PCA(n, random_state=0).fit(out[0][TR])
        out = [pca.transform(M) for M in out]
    return [M.astype(np.float32) for M in out]


def gamma_scale(Ztr):
    """SVC's gamma='scale' on these Training rows (the svm head's kernel width)."""
    return _rbf_gamma(Ztr, "scale")


def save_rbf(name, Z):
    """Save the RBF kernel (gamma 'scale') of Z as the component ``name``."""
    Ztr = Z[TR]; g = gamma_scale(Ztr)
    G = np.lib.format.open_memmap(path(name, "tr"), mode="w+", dtype=np.float32, shape=(len(TR), len(TR)))
    for a in range(0, len(TR), 2000):
        G[a:a + 2000] = rbf_kernel(Ztr[a:a + 2000], Ztr, gamma=g)
    G.flush()
    np.save(path(name, "te"), rbf_kernel(Z[TE], Ztr, gamma=g).astype(np.float32))


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


def parse_spec(spec):
    """'bovw:1,hog+lbp+landmarks:3' -> [(component name, weight), ...]."""
    return [(c.rsplit(":", 1)[0].replace("+", "_"), float(c.rsplit(":", 1)[1])) for c in spec.split(",")]


def kernel_sum(spec, rows=None):
    """'bovw:1,hog+lbp+landmarks:3' -> (Training x Training, rows of TE x Training) float64."""
    rows = np.arange(len(PU)) if rows is None else rows
    K = np.zeros((len(TR), len(TR))); Kt = np.zeros((len(rows), len(TR)))
    for name, w in parse_spec(spec):
        G, T, f = component(name)
        for a in range(0, len(TR), 2000):
            K[a:a + 2000] += w * f(G[a:a + 2000])
        Kt += w * f(T[rows])
    return K, Kt


def clock(t0):
    return f"{time.time() - t0:.0f} s, load {os.getloadavg()[0]:.2f}"
