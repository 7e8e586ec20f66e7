"""Which bag of visual words makes the best linear branch of the stacked head? For each variant
named on the command line: the linear SVM (C=0.2) on the words alone, and the stacked pair
(its held-out decision values beside those of rbf_branch.py, fused by logistic regression as
StackingClassifier does) on PublicTest. Variants: k4096, k8192 (presence, pyramid 1, 2, 3, 4),
k4096+k8192 (both side by side), and with the suffix -aug (mirrored Training copies),
-aug-tta (and the mirror image's decision values added at test time), -msum (the mean of
each face's vector and its mirror image's, one left-right-invariant vector); NAME@C sets C. Needs words.py 4096,8192,
feats.py and rbf_branch.py."""
import os, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import *  # noqa: F403 (WORK, the splits, hist, run, handcrafted)
from sklearn.svm import LinearSVC
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.utils.multiclass import _ovr_decision_function
R = np.load(os.path.join(WORK, f"rbf_cv{os.environ.get('RBF', '')}.npz"))  # RBF=msum: rbf_branch.py msum
folds = list(StratifiedKFold(3, shuffle=True, random_state=0).split(TR, y[TR]))
PYR = (1, 2, 3, 4)
acc_ = lambda s, rows=PU: round(float((s.argmax(1) == y[rows]).mean()), 4)
print("rbf branch alone, PublicTest", acc_(_ovr_decision_function(R["ovo_pu_full"] < 0, -R["ovo_pu_full"], 7)), flush=True)

def words_matrix(spec, flip=False):
    return sp.hstack([hist(int(k[1:]), PYR, "presence", flip=flip) for k in spec.split("+")]).tocsr()

def branch(F, Ff, mode, C=0.2):
    """Held-out decision values on Training (3 folds) and the full model's on PublicTest."""
    def fit(rows):
        if mode in ("aug", "aug-tta"):
            return LinearSVC(C=C, max_iter=5000).fit(sp.vstack([F[rows], Ff[rows]]).tocsr(), np.concatenate([y[rows], y[rows]]))
        return LinearSVC(C=C, max_iter=5000).fit(F[rows], y[rows])
    def dec(m, rows):
        d = m.decision_function(F[rows])
        return d + m.decision_function(Ff[rows]) if mode == "aug-tta" else d
    cv = np.zeros((len(TR), 7))
    for a, b in folds:
        cv[b] = dec(fit(TR[a]), TR[b])
    return cv, dec(fit(TR), PU)

for name in sys.argv[1:]:
    t = time.time()
    name, _, C = name.partition("@")  # NAME@C: the linear SVM's C (default 0.2)
    C = float(C or 0.2)
    spec, _, mode = name.partition("-")
    F = words_matrix(spec)
    Ff = words_matrix(spec, flip=True) if mode else None
    if mode == "msum":
        F, mode = ((F + Ff) / 2).tocsr(), ""
    cv, pu = branch(F, Ff, mode, C)
    final = LogisticRegression(max_iter=2000, random_state=0).fit(np.hstack([R["ovo_cv"], cv]), y[TR])
    p = final.predict_proba(np.hstack([R["ovo_pu_full"], pu]))
    print(f"{name} C={C}: words alone {acc_(pu)} (held-out Training {acc_(cv, TR)}), stacked {acc_(p)}, {round(time.time() - t)} s", flush=True)
