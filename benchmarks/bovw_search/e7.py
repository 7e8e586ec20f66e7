import os, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import *  # noqa: F403 (WORK, the splits, hist, run, handcrafted)
from sklearn.svm import LinearSVC, SVC
from sklearn.preprocessing import StandardScaler
from sklearn.decomposition import PCA
from sklearn.pipeline import make_pipeline
from sklearn.model_selection import StratifiedKFold
from joblib import Parallel, delayed
H = handcrafted()
F = hist(4096, (1, 2, 3, 4), "presence")
folds = list(StratifiedKFold(3, shuffle=True, random_state=0).split(TR, y[TR]))
def svc_fold(tr, te):
    m = make_pipeline(StandardScaler(), PCA(256, random_state=0), SVC(C=10, decision_function_shape="ovo", cache_size=1000)).fit(H[TR[tr]], y[TR[tr]])
    return te, m.decision_function(H[TR[te]]), m.decision_function(H[PU])
t = time.time()
res = Parallel(n_jobs=3)(delayed(svc_fold)(tr, te) for tr, te in folds)
print("svc folds", round(time.time() - t), flush=True)
ovo_cv = np.zeros((len(TR), 21)); ovo_pu = np.zeros((len(PU), 21))
for te, a, b in res: ovo_cv[te] = a; ovo_pu += b / 3
lin_cv = np.zeros((len(TR), 7)); lin_pu = np.zeros((len(PU), 7))
for tr, te in folds:
    m = LinearSVC(C=0.2, max_iter=3000).fit(F[TR[tr]], y[TR[tr]])
    lin_cv[te] = m.decision_function(F[TR[te]]); lin_pu += m.decision_function(F[PU]) / 3
full = LinearSVC(C=0.2, max_iter=3000).fit(F[TR], y[TR]); lin_pu_full = full.decision_function(F[PU])
np.savez(os.path.join(WORK, "cv.npz"), ovo_cv=ovo_cv, ovo_pu=ovo_pu, lin_cv=lin_cv, lin_pu=lin_pu, lin_pu_full=lin_pu_full)
print("done", round(time.time() - t), flush=True)
