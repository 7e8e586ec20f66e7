"""The stacked head's RBF branch on hog+lbp+landmarks (standardised, PCA 256, SVC C=10), as
held-out one-vs-one decision values: 3 folds of Training, the fold models averaged on
PublicTest, and the model fitted on all of Training on PublicTest (saved to rbf_cv.npz, read
by stack_words.py; with the argument msum, the features of each face plus those of its mirror
image, to rbf_cvmsum.npz). Needs feats.py. 2 processes; ~10 min of CPU."""
import os, sys
import time, numpy as np
from fer_features.datasets import load_fer2013
WORK = os.environ.get("BOVW_SEARCH_DIR", ".cache/bovw-search")
d = load_fer2013("../shared/data/fer2013.csv.gz"); y, usage = d.y, np.asarray(d.usage)
TR, PU = (np.flatnonzero(usage == u) for u in ("Training", "PublicTest"))
Fe = np.load(os.path.join(WORK, "feats.npz"))
H = np.hstack([Fe["hog"], Fe["lbp"], Fe["landmarks"]])
MODE = sys.argv[1] if len(sys.argv) > 1 else ""  # "msum": each face's features plus its mirror image's
if MODE == "msum":
    H = H + np.hstack([Fe["hog_flip"], Fe["lbp_flip"], Fe["landmarks_flip"]])
from sklearn.svm import SVC
from sklearn.preprocessing import StandardScaler
from sklearn.decomposition import PCA
from sklearn.pipeline import make_pipeline
from sklearn.model_selection import StratifiedKFold
from joblib import Parallel, delayed
folds = list(StratifiedKFold(3, shuffle=True, random_state=0).split(TR, y[TR]))
def svc(tr, te):
    m = make_pipeline(StandardScaler(), PCA(256, random_state=0), SVC(C=10, decision_function_shape="ovo", cache_size=1000)).fit(H[tr], y[tr])
    return (m.decision_function(H[te]) if te is not None else None), m.decision_function(H[PU])
t = time.time()
res = Parallel(n_jobs=2)(delayed(svc)(TR[a], None if b is None else TR[b]) for a, b in folds + [(np.arange(len(TR)), None)])
ovo_cv = np.zeros((len(TR), 21)); ovo_pu = np.zeros((len(PU), 21))
for (a, b), (cv, pu) in zip(folds, res): ovo_cv[b] = cv; ovo_pu += pu / 3
np.savez(os.path.join(WORK, f"rbf_cv{MODE}.npz"), ovo_cv=ovo_cv, ovo_pu=ovo_pu, ovo_pu_full=res[-1][1])
print("done", round(time.time() - t), flush=True)
