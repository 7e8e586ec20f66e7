"""The 8,000-face check of benchmarks/sift-bovw-presence.md (third search): the RBF SVM on
hog+lbp+landmarks (standardised, PCA 256, C=10) on features averaged with the mirror image's,
and with mirrored Training copies + test-time flips, on PublicTest. Needs feats.py."""
import os, time, numpy as np
from sklearn.svm import SVC
from sklearn.preprocessing import StandardScaler
from sklearn.decomposition import PCA
from sklearn.pipeline import make_pipeline
from fer_features.datasets import load_fer2013
d = load_fer2013("../shared/data/fer2013.csv.gz"); y, usage = d.y, np.asarray(d.usage)
TR, PU = (np.flatnonzero(usage == u) for u in ("Training", "PublicTest"))
Fe = np.load(os.path.join(os.environ.get("BOVW_SEARCH_DIR", ".cache/bovw-search"), "feats.npz"))
H = np.hstack([Fe["hog"], Fe["lbp"], Fe["landmarks"]]); Hf = np.hstack([Fe["hog_flip"], Fe["lbp_flip"], Fe["landmarks_flip"]])
tr = np.random.default_rng(0).choice(TR, 8000, replace=False)
for name, A in (("plain", H), ("msum", (H + Hf) / 2)):
    t = time.time(); m = make_pipeline(StandardScaler(), PCA(256, random_state=0), SVC(C=10)).fit(A[tr], y[tr])
    print(name, round((m.predict(A[PU]) == y[PU]).mean(), 4), round(time.time() - t), flush=True)
t = time.time(); m = make_pipeline(StandardScaler(), PCA(256, random_state=0), SVC(C=10)).fit(np.vstack([H[tr], Hf[tr]]), np.concatenate([y[tr], y[tr]]))
print("aug", round((m.predict(H[PU]) == y[PU]).mean(), 4), "tta", round(((m.decision_function(H[PU]) + m.decision_function(Hf[PU])).argmax(1) == y[PU]).mean(), 4), round(time.time() - t), flush=True)
