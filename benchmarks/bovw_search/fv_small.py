"""Fisher vectors (Perronnin et al. 2010, "improved": power and L2 normalisation) of the dense
RootSIFT descriptors that SIFTBoVW computes, against its 4,096-word presence vectors, on 8,000
Training faces (the sample of mirror_small.py), PublicTest. Args: K (GMM components, default
64), D (PCA dimensions, default 64), pyramid levels (default 1,2); environment: CS (LinearSVC
Cs, default 0.1), LRCS (logistic regression Cs, default none), MIRROR=1 (each face's vector
averaged with its mirror image's). The vectors are saved to fv_small_K…_D…_L…[1].npy. The
formula is the one SIFTFisherVector implements (tests/test_sift_fisher.py checks it); this
script predates it and computes the same thing on its own PCA and mixture."""
import os, sys, time, numpy as np
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import *  # noqa: F403
from sklearn.svm import LinearSVC
from sklearn.decomposition import PCA
from sklearn.mixture import GaussianMixture
from fer_features.datasets import load_fer2013
from fer_features.features.sift_bovw import SIFTBoVW
K = int(sys.argv[1]) if len(sys.argv) > 1 else 64
D = int(sys.argv[2]) if len(sys.argv) > 2 else 64
LEV = tuple(int(g) for g in (sys.argv[3] if len(sys.argv) > 3 else "1,2").split(","))
d = load_fer2013("../shared/data/fer2013.csv.gz")
tr = np.random.default_rng(0).choice(TR, 8000, replace=False)
rows = np.concatenate([tr, PU])
t = time.time()
F = hist(4096, (1, 2, 3, 4), "presence", rows=rows)
for C in (0.1, 0.2):
    m = LinearSVC(C=C, max_iter=5000).fit(F[:8000], y[tr]); print("presence 4096 C", C, round((m.predict(F[8000:]) == y[PU]).mean(), 4), flush=True)
bovw = SIFTBoVW()
X = np.asarray(d.X)[rows]
desc, cen = bovw._descriptors(X)  # (n, p, 128), (p, 2)
print("descriptors", desc.shape, round(time.time() - t), "s", flush=True)
rng = np.random.default_rng(0)
sample = desc[:8000][rng.integers(0, 8000, 200_000), rng.integers(0, desc.shape[1], 200_000)]
pca = PCA(D, whiten=False, random_state=0).fit(sample)
gmm = GaussianMixture(K, covariance_type="diag", max_iter=100, random_state=0, reg_covar=1e-4).fit(pca.transform(sample))
print("gmm", round(time.time() - t), "s", flush=True)
mu, sd, w = gmm.means_.astype(np.float32), np.sqrt(gmm.covariances_).astype(np.float32), gmm.weights_.astype(np.float32)
cellmaps = [np.minimum((cen[:, 0] * g / 48).astype(int), g - 1) * g + np.minimum((cen[:, 1] * g / 48).astype(int), g - 1) for g in LEV]
def fisher(desc):
    n, p = desc.shape[:2]
    out = np.zeros((n, sum(g * g for g in LEV) * 2 * K * D), np.float32)
    for s in range(0, n, 200):
        x = pca.transform(desc[s:s + 200].reshape(-1, 128)).astype(np.float32)
        b = len(x) // p
        gam = gmm.predict_proba(x).astype(np.float32).reshape(b, p, K)
        x = x.reshape(b, p, D)
        blocks = []
        for g, cm in zip(LEV, cellmaps):
            for c in range(g * g):
                sel = cm == c
                gg, xx = gam[:, sel].transpose(0, 2, 1), x[:, sel]  # (b, K, t), (b, t, D)
                N, s0, s1, s2 = sel.sum(), gg.sum(2)[:, :, None], gg @ xx, gg @ (xx ** 2)
                u = (s1 - mu[None] * s0) / sd[None] / (N * np.sqrt(w)[None, :, None])
                v = ((s2 - 2 * mu[None] * s1 + mu[None] ** 2 * s0) / sd[None] ** 2 - s0) / (N * np.sqrt(2 * w)[None, :, None])
                f = np.concatenate([u.reshape(b, -1), v.reshape(b, -1)], 1)
                f = np.sign(f) * np.sqrt(np.abs(f))
                f /= np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)
                blocks.append(f)
        out[s:s + 200] = np.hstack(blocks)

    return out
out = fisher(desc)
if os.environ.get("MIRROR"):  # the mean of each face's Fisher vector and its mirror image's
    out += fisher(bovw._descriptors(X[:, :, ::-1])[0]); out /= 2
print("fisher vectors", out.shape, round(time.time() - t), "s", flush=True)
np.save(os.path.join(WORK, f"fv_small_K{K}_D{D}_L{''.join(map(str, LEV))}{os.environ.get('MIRROR', '')}.npy"), out)
from sklearn.linear_model import LogisticRegression
for C in (float(c) for c in os.environ.get("CS", "0.1").split(",") if c):
    t1 = time.time(); m = LinearSVC(C=C, max_iter=3000).fit(out[:8000], y[tr])
    print(f"fisher K={K} D={D} levels={LEV} LinearSVC C={C}", round((m.predict(out[8000:]) == y[PU]).mean(), 4), round(time.time() - t1), "s", flush=True)
for C in (float(c) for c in os.environ.get("LRCS", "").split(",") if c):
    t1 = time.time(); m = LogisticRegression(C=C, max_iter=500).fit(out[:8000], y[tr])
    print(f"fisher K={K} D={D} levels={LEV} LogisticRegression C={C}", round((m.predict(out[8000:]) == y[PU]).mean(), 4), round(time.time() - t1), "s", m.coef_.dtype, m.n_iter_, flush=True)
