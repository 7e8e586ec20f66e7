import os
WORK = os.environ.get("BOVW_SEARCH_DIR", ".cache/bovw-search")  # intermediate arrays (words, features); run from the repository root
os.makedirs(WORK, exist_ok=True)
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.utils.multiclass import _ovr_decision_function
from scipy.special import log_softmax
W = np.load(os.path.join(WORK, "words.npz"), allow_pickle=True); y = W["y"]; u = W["usage"]
TR, PU = np.flatnonzero(u == "Training"), np.flatnonzero(u == "PublicTest")
C = np.load(os.path.join(WORK, "cv.npz"))
def ovr(d): return _ovr_decision_function(d < 0, -d, 7)
o_cv, o_pu = ovr(C["ovo_cv"]), ovr(C["ovo_pu"])
l_cv, l_pu = C["lin_cv"], C["lin_pu"]
a = lambda p: round(float((p.argmax(1) == y[PU]).mean()), 4)
print("svc alone", a(o_pu), "cv acc", round(float((o_cv.argmax(1) == y[TR]).mean()), 4), "lin alone", a(l_pu), a(C["lin_pu_full"]))
for name, Ztr, Zpu in [("ovr+lin", np.hstack([o_cv, l_cv]), np.hstack([o_pu, l_pu])), ("ovo+lin", np.hstack([C["ovo_cv"], l_cv]), np.hstack([C["ovo_pu"], l_pu]))]:
    for Cc in (0.01, 1):
        m = LogisticRegression(C=Cc, max_iter=3000).fit(Ztr, y[TR]); print("LR", name, Cc, a(m.predict_proba(Zpu)))
# temperature + weight: fit T per branch on cv, then weight by cv accuracy
def fitT(d, yy):
    best = None
    for T in np.geomspace(0.01, 10, 60):
        ll = -log_softmax(d / T, axis=1)[np.arange(len(yy)), yy].mean()
        if best is None or ll < best[0]: best = (ll, T)
    return best[1]
To, Tl = fitT(o_cv, y[TR]), fitT(l_cv, y[TR])
for w in (0.2, 0.35, 0.5, 0.75, 1.0):
    s_cv = log_softmax(o_cv / To, axis=1) + w * log_softmax(l_cv / Tl, axis=1)
    s_pu = log_softmax(o_pu / To, axis=1) + w * log_softmax(l_pu / Tl, axis=1)
    print("logprob sum w", w, "cv", round(float((s_cv.argmax(1) == y[TR]).mean()), 4), "PU", a(s_pu))
