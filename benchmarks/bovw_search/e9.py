import os
WORK = os.environ.get("BOVW_SEARCH_DIR", ".cache/bovw-search")
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from sklearn.pipeline import make_pipeline
from sklearn.utils.multiclass import _ovr_decision_function
W = np.load(os.path.join(WORK, "words.npz"), allow_pickle=True); y = W["y"]; u = W["usage"]
TR, PU = np.flatnonzero(u == "Training"), np.flatnonzero(u == "PublicTest")
C = np.load(os.path.join(WORK, "cv.npz"))
def ovr(d): return _ovr_decision_function(d < 0, -d, 7)
a = lambda p: round(float((p.argmax(1) == y[PU]).mean()), 4)
sets = {"ovo+lin": (np.hstack([C["ovo_cv"], C["lin_cv"]]), np.hstack([C["ovo_pu"], C["lin_pu"]])),
        "ovr+ovo+lin": (np.hstack([ovr(C["ovo_cv"]), C["ovo_cv"], C["lin_cv"]]), np.hstack([ovr(C["ovo_pu"]), C["ovo_pu"], C["lin_pu"]])),
        "ovo alone": (C["ovo_cv"], C["ovo_pu"])}
for name, (Ztr, Zpu) in sets.items():
    for Cc in (1, 10, 100):
        for sc in (False, True):
            m = make_pipeline(StandardScaler(), LogisticRegression(C=Cc, max_iter=5000)) if sc else LogisticRegression(C=Cc, max_iter=5000)
            m.fit(Ztr, y[TR]); print(name, Cc, "scaled" if sc else "", a(m.predict_proba(Zpu)), flush=True)
