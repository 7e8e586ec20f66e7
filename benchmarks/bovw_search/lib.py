import os
WORK = os.environ.get("BOVW_SEARCH_DIR", ".cache/bovw-search")  # intermediate arrays (words, features); run from the repository root
os.makedirs(WORK, exist_ok=True)
import time, numpy as np, scipy.sparse as sp
W = np.load(os.path.join(WORK, "words.npz"), allow_pickle=True)
y, usage, centres = W["y"], W["usage"], W["centres"]
TR, PU, PR = (np.flatnonzero(usage == u) for u in ("Training", "PublicTest", "PrivateTest"))
_flip = None
def words(k, flip=False):
    global _flip
    if flip:
        if _flip is None: _flip = np.load(os.path.join(WORK, "words_flip.npz"))
        return _flip[f"w{k}"]
    return W[f"w{k}"]
def cells(g, scales=None):
    r = np.minimum((centres[:, 0] * g / 48).astype(int), g - 1)
    c = np.minimum((centres[:, 1] * g / 48).astype(int), g - 1)
    return r * g + c
def hist(k, pyramid=(1, 2, 4), encoding="presence", level_w=None, flip=False, rows=None):
    w = words(k, flip).astype(np.int64)
    if rows is not None: w = w[rows]
    n, p = w.shape
    blocks = []
    for li, g in enumerate(pyramid):
        col = (cells(g)[None, :] * k + w).ravel()
        row = np.repeat(np.arange(n), p)
        M = sp.csr_matrix((np.ones(len(col), np.float32), (row, col)), shape=(n, g * g * k))
        M.sum_duplicates()
        if encoding == "presence": M.data[:] = 1
        elif encoding == "sqrt": M.data = np.sqrt(M.data)
        nrm = np.sqrt(np.asarray(M.multiply(M).sum(1)).ravel())
        M = sp.diags(1 / np.maximum(nrm, 1e-12)) @ M
        if level_w is not None: M = M * level_w[li]
        blocks.append(M)
    return sp.hstack(blocks).tocsr().astype(np.float32)
def acc(clf, F, rows=PU):
    return (clf.predict(F[rows]) == y[rows]).mean()
def run(name, F, Cs=(0.1, 0.3, 1.0), Ftr=None, ytr=None):
    from sklearn.svm import LinearSVC
    Ftr = F[TR] if Ftr is None else Ftr
    ytr = y[TR] if ytr is None else ytr
    out = []
    for C in Cs:
        t = time.time()
        m = LinearSVC(C=C, max_iter=3000).fit(Ftr, ytr)
        out.append((C, round(acc(m, F), 4), round(time.time() - t)))
    print(name, out, flush=True)
    return out
def handcrafted(flip=False):
    """hog, lbp and landmarks side by side (feats.py), of the faces or of their mirror images."""
    Fe = np.load(os.path.join(WORK, "feats.npz"))
    tail = "_flip" if flip else ""
    return np.hstack([Fe["hog" + tail], Fe["lbp" + tail], Fe["landmarks" + tail]])
